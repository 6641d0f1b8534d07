package rest

import (
	"errors"
	"log/slog"
	"net/http"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"

	"github.com/ytcaption/ytcaption/edge/internal/gate"
	"github.com/ytcaption/ytcaption/internal/errcode"
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

// codedError is an error with code's own status.
func codedError(code, message string) *apiError {
	return newError(errcode.Status(code), code, message)
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// byConnectCode is the code of a Connect error core sent without one of
// its own; the status is the code's (errcode.Status).
var byConnectCode = map[connect.Code]string{
	connect.CodeInvalidArgument:    errcode.InvalidArgument,
	connect.CodeUnauthenticated:    errcode.Unauthorized,
	connect.CodePermissionDenied:   errcode.Forbidden,
	connect.CodeNotFound:           errcode.NotFound,
	connect.CodeFailedPrecondition: errcode.Conflict,
	connect.CodeAlreadyExists:      errcode.Conflict,
	connect.CodeAborted:            errcode.Conflict,
	connect.CodeResourceExhausted:  errcode.RateLimited,
	connect.CodeUnavailable:        errcode.Unavailable,
	connect.CodeDeadlineExceeded:   errcode.Timeout,
	connect.CodeCanceled:           errcode.Unavailable,
}

// fromConnect is the one mapping of core's errors to REST errors: the code
// core sent in its ErrorDetail, else the Connect code's; the status is the
// code's in package errcode, which says some codes more precisely than
// Connect can (quota_exceeded is 403, not 429: a used-up month does not come
// back in seconds).
func fromConnect(err error) *apiError {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return nil
	}
	code, ok := byConnectCode[ce.Code()]
	if !ok {
		return nil
	}
	e := codedError(code, ce.Message())
	if detail := errcode.OfConnect(ce); detail != "" {
		e.code = detail
	}
	if st := errcode.Status(e.code); st != 0 {
		e.status = st
	}
	if (ce.Code() == connect.CodeUnavailable || ce.Code() == connect.CodeCanceled) && e.code == errcode.Unavailable {
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

// fiberCodes are the codes of Fiber's own refusals, which keep Fiber's
// status (a 408 or 431 says more than timeout's or request_too_large's own).
var fiberCodes = map[int]string{
	http.StatusNotFound:              errcode.NotFound,
	http.StatusMethodNotAllowed:      errcode.MethodNotAllowed,
	http.StatusRequestEntityTooLarge: errcode.RequestTooLarge,
	http.StatusBadRequest:            errcode.InvalidArgument,
	http.StatusRequestTimeout:        errcode.Timeout,
	// The request line and headers did not fit the listener's read buffer.
	http.StatusRequestHeaderFieldsTooLarge: errcode.RequestTooLarge,
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
			ae = codedError(errcode.Internal, "internal error")
		}
		var body errorBody
		body.Error.Code, body.Error.Message = ae.code, ae.message
		return c.Status(ae.status).JSON(body)
	}
}
