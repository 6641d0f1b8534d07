package sharetoken

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestNewTokensAreValidDistinctAndHashed(t *testing.T) {
	t.Parallel()
	a, ha := New()
	b, hb := New()
	require.True(t, Valid(a), a)
	require.True(t, Valid(b), b)
	require.NotEqual(t, a, b)
	require.Len(t, ha, 32)
	require.True(t, bytes.Equal(ha, Hash(a)))
	require.False(t, bytes.Equal(ha, hb))
}

func TestValidRefusesMalformedTokens(t *testing.T) {
	t.Parallel()
	good, _ := New()
	for name, tok := range map[string]string{
		"empty":         "",
		"short":         good[:Len-1],
		"long":          good + "A",
		"padded":        good[:Len-1] + "=",
		"std alphabet":  "+" + good[1:],
		"slash":         "/" + good[1:],
		"dot dot":       ".." + good[2:],
		"space":         " " + good[1:],
		"percent":       "%" + good[1:],
		"non-ascii":     "é" + good[2:],
		"nul":           "\x00" + good[1:],
		"not canonical": good[:Len-1] + "B", // the last character's low 2 bits must be 0
	} {
		require.False(t, Valid(tok), "%s: %q", name, tok)
	}
}
