package errcode

import (
	"errors"

	"connectrpc.com/connect"

	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// OfConnect is the stable code a service attached to a Connect error as its
// ErrorDetail, or "" when err carries none.
func OfConnect(err error) string {
	var ce *connect.Error
	if !errors.As(err, &ce) {
		return ""
	}
	for _, d := range ce.Details() {
		if v, derr := d.Value(); derr == nil {
			if ed, ok := v.(*ytcaptionv1.ErrorDetail); ok {
				return ed.GetCode()
			}
		}
	}
	return ""
}

// Connect is a Connect error with code, message and, when detail is not "",
// the stable code detail as its ErrorDetail: how every service says which
// refusal it is (OfConnect reads it back).
func Connect(code connect.Code, detail, message string) *connect.Error {
	ce := connect.NewError(code, errors.New(message))
	if detail != "" {
		if d, err := connect.NewErrorDetail(&ytcaptionv1.ErrorDetail{Code: detail}); err == nil {
			ce.AddDetail(d)
		}
	}
	return ce
}
