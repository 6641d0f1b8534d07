package rest

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gofiber/fiber/v2"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/edge/internal/gate"
)

// TestErrorHandlerSaysEveryRefusal: each kind of the gate's refusals leaves
// as its HTTP status and the JSON error body, its headers on the reply — a
// kind added to the gate without a row here fails.
func TestErrorHandlerSaysEveryRefusal(t *testing.T) {
	t.Parallel()
	want := map[gate.Kind]int{
		gate.Unauthenticated: http.StatusUnauthorized,
		gate.Exhausted:       http.StatusTooManyRequests,
		gate.Unavailable:     http.StatusServiceUnavailable,
		gate.Invalid:         http.StatusBadRequest,
		gate.KeyMismatch:     http.StatusUnprocessableEntity,
		gate.KeyInUse:        http.StatusConflict,
	}
	for k := gate.Kind(1); k <= gate.KeyInUse; k++ {
		app := fiber.New(fiber.Config{ErrorHandler: errorHandler(slog.New(slog.DiscardHandler))})
		app.Get("/", func(*fiber.Ctx) error {
			h := http.Header{}
			h.Set("Retry-After", "7")
			return &gate.Error{Kind: k, Code: "some_code", Message: "why", Header: h}
		})
		resp, err := app.Test(httptest.NewRequest(http.MethodGet, "/", nil))
		require.NoError(t, err)
		b, _ := io.ReadAll(resp.Body)
		require.Equal(t, want[k], resp.StatusCode, "kind %d", k)
		require.Equal(t, "7", resp.Header.Get("Retry-After"))
		var body errorBody
		require.NoError(t, json.Unmarshal(b, &body), string(b))
		require.Equal(t, "some_code", body.Error.Code)
		require.Equal(t, "why", body.Error.Message)
	}
}
