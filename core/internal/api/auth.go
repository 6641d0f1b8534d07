package api

import (
	"context"
	"net/http"

	"connectrpc.com/connect"
	"github.com/google/uuid"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/svcauth"
)

type userKey struct{}

// userID returns the user the edge authenticated for this call.
func userID(ctx context.Context) string {
	id, _ := ctx.Value(userKey{}).(string)
	return id
}

// authenticator checks a request's headers and returns the context the handler
// runs with, or a Connect error.
type authenticator func(ctx context.Context, h http.Header) (context.Context, error)

// serviceAuth admits the edge: its service token plus the id of the user it
// authenticated. withUser=false is for AuthService, which has no user yet.
func serviceAuth(token string, withUser bool) authenticator {
	return func(ctx context.Context, h http.Header) (context.Context, error) {
		if !svcauth.Equal(svcauth.Bearer(h), token) {
			return nil, errcode.Connect(connect.CodeUnauthenticated, job.CodeUnauthorized, "invalid service token")
		}
		if !withUser {
			return ctx, nil
		}
		return onBehalfOf(ctx, h.Get(svcauth.UserHeader))
	}
}

// onBehalfOf is ctx for a call on behalf of the user the edge authenticated.
func onBehalfOf(ctx context.Context, id string) (context.Context, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, errcode.Connect(connect.CodeUnauthenticated, job.CodeUnauthorized, "missing or malformed user id")
	}
	return context.WithValue(ctx, userKey{}, id), nil
}

// nodeAuth admits gpu-nodes presenting one of the configured node tokens.
func nodeAuth(tokens []string) authenticator {
	return func(ctx context.Context, h http.Header) (context.Context, error) {
		got := svcauth.Bearer(h)
		for _, t := range tokens {
			if svcauth.Equal(got, t) {
				return ctx, nil
			}
		}
		return nil, errcode.Connect(connect.CodeUnauthenticated, job.CodeUnauthorized, "invalid node token")
	}
}

// interceptor applies an authenticator to unary and streaming handlers alike.
type interceptor struct{ auth authenticator }

func (i interceptor) WrapUnary(next connect.UnaryFunc) connect.UnaryFunc {
	return func(ctx context.Context, req connect.AnyRequest) (connect.AnyResponse, error) {
		ctx, err := i.auth(ctx, req.Header())
		if err != nil {
			return nil, err
		}
		return next(ctx, req)
	}
}

func (i interceptor) WrapStreamingClient(next connect.StreamingClientFunc) connect.StreamingClientFunc {
	return next
}

func (i interceptor) WrapStreamingHandler(next connect.StreamingHandlerFunc) connect.StreamingHandlerFunc {
	return func(ctx context.Context, conn connect.StreamingHandlerConn) error {
		ctx, err := i.auth(ctx, conn.RequestHeader())
		if err != nil {
			return err
		}
		return next(ctx, conn)
	}
}
