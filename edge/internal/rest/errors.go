package rest

import (
	"errors"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"

	"github.com/ytcaption/ytcaption/edge/internal/gate"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// apiError is an error with its HTTP status and stable code.
type apiError struct {
	status  int
	code    string
	message string
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func newError(status int, code, message string) *apiError {
	return &apiError{status: status, code: code, message: message}
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// byConnectCode maps Connect codes to HTTP, for errors without a core code.
var byConnectCode = map[connect.Code]struct {
	status int
	code   string
}{
	connect.CodeInvalidArgument:    {http.StatusBadRequest, "invalid_argument"},
	connect.CodeUnauthenticated:    {http.StatusUnauthorized, "unauthorized"},
	connect.CodePermissionDenied:   {http.StatusForbidden, "forbidden"},
	connect.CodeNotFound:           {http.StatusNotFound, "not_found"},
	connect.CodeFailedPrecondition: {http.StatusConflict, "conflict"},
	connect.CodeAlreadyExists:      {http.StatusConflict, "conflict"},
	connect.CodeAborted:            {http.StatusConflict, "conflict"},
	connect.CodeResourceExhausted:  {http.StatusTooManyRequests, "rate_limited"},
	connect.CodeUnavailable:        {http.StatusServiceUnavailable, "unavailable"},
	connect.CodeDeadlineExceeded:   {http.StatusGatewayTimeout, "timeout"},
	connect.CodeCanceled:           {http.StatusServiceUnavailable, "unavailable"},
}

// statusByCode refines the status for core codes that HTTP says more
// precisely than Connect can.
var statusByCode = map[string]int{
	"idempotency_key_mismatch": http.StatusUnprocessableEntity, // IETF Idempotency-Key draft
	// Not 429: clients retry those, and a used-up month does not come back
	// in seconds. The message says what remains and when it resets.
	"quota_exceeded": http.StatusForbidden,
}

// fromConnect is the one mapping of core's errors to REST errors: the status
// from the Connect code, the code from core's ErrorDetail when it sent one.
func fromConnect(err error) *apiError {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil
	}
	m, ok := byConnectCode[ce.Code()]
	if !ok {
		return nil
	}
	e := newError(m.status, m.code, ce.Message())
	for _, d := range ce.Details() {
		if v, derr := d.Value(); derr == nil {
			if ed, ok := v.(*ytcaptionv1.ErrorDetail); ok && ed.GetCode() != "" {
				e.code = ed.GetCode()
			}
		}
	}
	if st, ok := statusByCode[e.code]; ok {
		e.status = st
	}
	if (ce.Code() == connect.CodeUnavailable || ce.Code() == connect.CodeCanceled) && e.code == "unavailable" {
		// Not core's words about a connection it lost: a coded refusal
		// (intake_paused) keeps its own message.
		e.message = "the service is temporarily unavailable; retry shortly"
	}
	return e
}

// statusByKind says each kind of package gate's refusals in HTTP.
var statusByKind = map[gate.Kind]int{
	gate.Unauthenticated: http.StatusUnauthorized,
	gate.Exhausted:       http.StatusTooManyRequests,
	gate.Unavailable:     http.StatusServiceUnavailable,
	gate.Invalid:         http.StatusBadRequest,
	gate.KeyMismatch:     http.StatusUnprocessableEntity, // IETF Idempotency-Key draft
	gate.KeyInUse:        http.StatusConflict,
}

var fiberCodes = map[int]string{
	http.StatusNotFound:              "not_found",
	http.StatusMethodNotAllowed:      "method_not_allowed",
	http.StatusRequestEntityTooLarge: "request_too_large",
	http.StatusBadRequest:            "invalid_argument",
	http.StatusRequestTimeout:        "timeout",
	// The request line and headers did not fit the listener's read buffer.
	http.StatusRequestHeaderFieldsTooLarge: "request_too_large",
}

// errorHandler is the one REST error writer: every error reply is
// {"error":{"code","message"}}. Unknown errors are logged here, once, and
// leave as a generic 500.
func errorHandler(log *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		var ae *apiError
		var ge *gate.Error
		var fe *fiber.Error
		switch {
		case errors.As(err, &ae):
		case errors.As(err, &ge) && statusByKind[ge.Kind] != 0:
			for k := range ge.Header { // Retry-After, a rate limit's headers
				c.Set(k, ge.Header.Get(k))
			}
			ae = newError(statusByKind[ge.Kind], ge.Code, ge.Message)
		case fromConnect(err) != nil:
			ae = fromConnect(err)
		case errors.As(err, &fe) && fiberCodes[fe.Code] != "":
			msg := fe.Message
			switch fe.Code {
			case http.StatusNotFound:
				msg = "no such route: " + c.Method() + " " + c.Path()
			case http.StatusRequestEntityTooLarge:
				msg = "the request body is too large"
			case http.StatusRequestHeaderFieldsTooLarge:
				msg = "the request's headers are too large"
			}
			ae = newError(fe.Code, fiberCodes[fe.Code], msg)
		default:
			log.Error("request failed", "method", c.Method(), "route", c.Route().Path, "err", err)
			ae = newError(http.StatusInternalServerError, "internal", "internal error")
		}
		var body errorBody
		body.Error.Code, body.Error.Message = ae.code, ae.message
		return c.Status(ae.status).JSON(body)
	}
}
