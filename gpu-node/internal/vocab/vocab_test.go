package vocab

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func TestText(t *testing.T) {
	t.Parallel()
	f := New([]string{"Kubernetes", "Nomad", "Nomad Autoscaler", "Wi-Fi", "PostgreSQL", "C++", "Müller", "gRPC", " ", ""})
	for _, tc := range []struct{ in, want string }{
		{"we run kubernetes and nomad", "we run Kubernetes and Nomad"},
		{"KUBERNETES, Nomad.", "Kubernetes, Nomad."},
		{"a nomadic life, unnomad, nomads", "a nomadic life, unnomad, nomads"}, // never inside other words
		{"the nomad   autoscaler scales", "the Nomad Autoscaler scales"},       // multi-word, any spacing
		{"the nomad-autoscaler", "the Nomad Autoscaler"},
		{"turn on wi fi or wifi or WI-FI", "turn on Wi-Fi or wifi or Wi-Fi"},
		{"postgresql9 and postgresql", "postgresql9 and PostgreSQL"},
		{"c++ and C++17", "C++ and C++17"}, // the term ends in "+": no edge to check after it
		{"herr müller und MÜLLER", "herr Müller und Müller"},
		{"grpc_gateway grpc", "grpc_gateway gRPC"},
		{"", ""},
	} {
		require.Equal(t, tc.want, f.Text(tc.in), "Text(%q)", tc.in)
	}
}

func TestWords(t *testing.T) {
	t.Parallel()
	f := New([]string{"Nomad Autoscaler", "Kubernetes"})
	got := f.Words(strings.Fields(`"nomad autoscaler," kubernetes! nomad`))
	require.Equal(t, []string{`"Nomad`, `Autoscaler,"`, "Kubernetes!", "nomad"}, got)
}

func TestEmptyChangesNothing(t *testing.T) {
	t.Parallel()
	f := New(nil)
	require.True(t, f.Empty())
	require.True(t, New([]string{"\xb1", " - "}).Empty(), "not UTF-8, or no word")
	require.Equal(t, "kubernetes", f.Text("kubernetes"))
}

func TestPrompt(t *testing.T) {
	t.Parallel()
	require.Equal(t, "", Prompt("", nil))
	require.Equal(t, "A talk.", Prompt("A talk.", nil))
	require.Equal(t, "Kubernetes, Nomad.", Prompt("", []string{"Kubernetes", "Nomad"}))
	require.Equal(t, "A talk. Kubernetes, Nomad.", Prompt("A talk. ", []string{"Kubernetes", "Nomad"}))
}

func FuzzText(f *testing.F) {
	f.Add("we run kubernetes and nomad autoscaler", "Nomad Autoscaler")
	f.Fuzz(func(t *testing.T, s, term string) {
		if !utf8.ValidString(s) {
			t.Skip("text arrives in protobuf strings: UTF-8")
		}
		fx := New([]string{term})
		out := fx.Text(s)
		// Only the case and the separators of a term change: the text keeps
		// its words otherwise.
		if len(splitTerm(term)) == 1 && !strings.ContainsAny(term, " -") {
			require.Equal(t, strings.ToLower(s), strings.ToLower(out))
		}
	})
}
