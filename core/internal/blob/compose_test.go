package blob

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/miniotest"
)

// checkCompose: parts put separately come back as one object in order; a
// small part anywhere but last is refused; DeletePrefix removes the parts
// and nothing beside them.
func checkCompose(t *testing.T, st Store, refusesSmallParts bool) {
	ctx := context.Background()
	var want []byte
	var parts []string
	for i, size := range []int{MinComposePart, MinComposePart + 3, 11} {
		b := bytes.Repeat([]byte{byte('a' + i)}, size)
		key := "staging/x/" + string(rune('1'+i))
		require.NoError(t, st.Put(ctx, key, bytes.NewReader(b), int64(len(b)), "application/octet-stream"))
		want = append(want, b...)
		parts = append(parts, key)
	}
	require.NoError(t, st.Put(ctx, "staging/xy", bytes.NewReader([]byte("beside")), 6, ""))

	require.NoError(t, st.Compose(ctx, "whole/x", parts))
	r, err := st.Open(ctx, "whole/x")
	require.NoError(t, err)
	got, err := io.ReadAll(r)
	r.Close()
	require.NoError(t, err)
	require.True(t, bytes.Equal(want, got), "composed %d bytes, want %d in order", len(got), len(want))

	if refusesSmallParts {
		require.Error(t, st.Compose(ctx, "whole/y", []string{parts[2], parts[0]}), "a part under 5 MiB before the last")
	}

	require.Error(t, st.DeletePrefix(ctx, "staging/x"), "a prefix must end in /")
	require.NoError(t, st.DeletePrefix(ctx, "staging/x/"))
	for _, k := range parts {
		ok, err := st.Exists(ctx, k)
		require.NoError(t, err)
		require.False(t, ok, k)
	}
	for _, k := range []string{"staging/xy", "whole/x"} {
		ok, err := st.Exists(ctx, k)
		require.NoError(t, err)
		require.True(t, ok, "%s is not under the prefix", k)
	}
	require.NoError(t, st.DeletePrefix(ctx, "staging/nothing/"), "an empty prefix is no error")
}

func TestComposeOnRealMinIO(t *testing.T) {
	t.Parallel()
	srv := miniotest.Start(t)
	s, err := New(context.Background(), Config{Endpoint: srv.Endpoint, AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, Bucket: "compose"})
	require.NoError(t, err)
	checkCompose(t, s, true)
}

func TestComposeInADirectory(t *testing.T) {
	t.Parallel()
	d, err := OpenDir(t.TempDir(), "")
	require.NoError(t, err)
	checkCompose(t, d, false)
}
