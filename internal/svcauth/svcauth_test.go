package svcauth

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestBearer(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ header, want string }{
		{"Bearer abc", "abc"},
		{"bearer  abc ", "abc"},
		{"Basic abc", ""},
		{"Bearer", ""},
		{"", ""},
	} {
		h := http.Header{}
		h.Set("Authorization", tc.header)
		require.Equal(t, tc.want, Bearer(h), tc.header)
	}
}

func TestEqualRefusesEmptySecret(t *testing.T) {
	t.Parallel()
	require.True(t, Equal("s3cret", "s3cret"))
	require.False(t, Equal("s3cret", "s3cre"))
	require.False(t, Equal("", ""))
}

func TestTransportAddsToken(t *testing.T) {
	t.Parallel()
	var got string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = Bearer(r.Header) }))
	defer srv.Close()
	c := &http.Client{Transport: &Transport{Token: "tok"}}
	resp, err := c.Get(srv.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, "tok", got)
}
