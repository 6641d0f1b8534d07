package connectapi

import (
	"errors"
	"net/http"
	"testing"

	"connectrpc.com/connect"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/edge/internal/gate"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// TestToConnectSaysEveryRefusal: each kind of the gate's refusals leaves as
// its Connect code, the REST code as an ErrorDetail, the message, and its
// headers as metadata — a kind added to the gate without a row here fails.
func TestToConnectSaysEveryRefusal(t *testing.T) {
	t.Parallel()
	want := map[gate.Kind]connect.Code{
		gate.Unauthenticated: connect.CodeUnauthenticated,
		gate.Exhausted:       connect.CodeResourceExhausted,
		gate.Unavailable:     connect.CodeUnavailable,
		gate.Invalid:         connect.CodeInvalidArgument,
		gate.KeyMismatch:     connect.CodeFailedPrecondition,
		gate.KeyInUse:        connect.CodeAborted,
	}
	for k := gate.Kind(1); k <= gate.KeyInUse; k++ {
		h := http.Header{}
		h.Set("Retry-After", "7")
		err := toConnect(&gate.Error{Kind: k, Code: "some_code", Message: "why", Header: h})
		var ce *connect.Error
		require.ErrorAs(t, err, &ce)
		require.Equal(t, want[k], ce.Code(), "kind %d", k)
		require.Equal(t, "why", ce.Message())
		require.Equal(t, "7", ce.Meta().Get("Retry-After"))
		require.Len(t, ce.Details(), 1)
		v, derr := ce.Details()[0].Value()
		require.NoError(t, derr)
		require.Equal(t, "some_code", v.(*ytcaptionv1.ErrorDetail).GetCode())
	}
	core := connect.NewError(connect.CodeNotFound, errors.New("no job"))
	require.Same(t, core, toConnect(core), "core's errors pass unchanged")
}
