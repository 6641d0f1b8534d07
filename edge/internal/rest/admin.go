package rest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/jobjson"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// adminRoutes mounts core's AdminService under /v1/admin. Each route is one
// call; protoCall fills its request from the JSON body, the path and the
// query string, so the REST shape is the protobuf's, field for field.
func (s *server) adminRoutes(v1 fiber.Router) {
	a := s.Core.Admin
	g := v1.Group("/admin", s.requireAdmin)
	g.Get("/users", protoCall(s, a.ListUsers, ""))
	g.Post("/users", protoCall(s, a.CreateUser, ""))
	g.Get("/users/:user_id", protoCall(s, a.GetUser, ""))
	g.Patch("/users/:user_id", protoCall(s, a.UpdateUser, ""))
	g.Delete("/users/:user_id", protoCall(s, a.DeleteUser, ""))
	g.Get("/users/:user_id/keys", protoCall(s, a.ListKeys, ""))
	g.Post("/users/:user_id/keys", protoCall(s, a.CreateKey, ""))
	g.Delete("/keys/:key_id", protoCall(s, a.RevokeKey, ""))
	g.Post("/keys/:key_id/rotate", protoCall(s, a.RotateKey, ""))
	g.Get("/plans", protoCall(s, a.ListPlans, ""))
	g.Put("/plans/:name", protoCall(s, a.SetPlan, "plan"))
	g.Get("/usage", protoCall(s, a.UsageReport, ""))
	g.Get("/jobs", protoCall(s, a.SearchJobs, ""))
	g.Get("/jobs/:id", protoCall(s, a.GetJobDetail, ""))
	g.Post("/jobs/:id/retry", protoCall(s, a.RetryJob, ""))
	g.Post("/jobs/:id/cancel", protoCall(s, a.AdminCancelJob, ""))
	g.Get("/batches", protoCall(s, a.SearchBatches, ""))
	g.Get("/batches/:id", protoCall(s, a.GetBatchDetail, ""))
	g.Post("/batches/:id/cancel", protoCall(s, a.AdminCancelBatch, ""))
	g.Get("/fleet", protoCall(s, a.ListAgents, ""))
	g.Post("/fleet/:node_id/drain", protoCall(s, a.DrainAgent, ""))
	g.Get("/breakers", protoCall(s, a.ListBreakers, ""))
	g.Post("/breakers/:name/reset", protoCall(s, a.ResetBreaker, ""))
	g.Get("/audit", protoCall(s, a.ListAudit, ""))
	// Cookie files for yt-dlp: the body of a POST is at most the edge's
	// --max-body-bytes (64 KiB), plenty for a YouTube export; the dashboard
	// takes larger ones, up to core's cap.
	g.Get("/cookies", protoCall(s, a.ListCookieFiles, ""))
	g.Post("/cookies", protoCall(s, a.AddCookieFile, ""))
	g.Patch("/cookies/:cookie_file_id", protoCall(s, a.UpdateCookieFile, ""))
	g.Delete("/cookies/:cookie_file_id", protoCall(s, a.DeleteCookieFile, ""))
	g.Get("/outbound", protoCall(s, a.ListOutbound, ""))
}

// requireAdmin turns users away before core is asked (core checks again,
// against the database, since the edge's key cache may be seconds old).
func (s *server) requireAdmin(c *fiber.Ctx) error {
	if principal(c).Role != "admin" {
		return codedError(errcode.Forbidden, "the admin API needs an admin's API key")
	}
	return c.Next()
}

// jsonValue is m as JSON with the protobuf field names, every field present
// (an unset message is null, an unset optional scalar left out), times in
// RFC 3339 — and any Job in the public job shape, so a job reads the same
// under /v1/admin as under /v1/jobs.
func jsonValue(m protoreflect.Message) any {
	switch m.Descriptor().FullName() {
	case "ytcaption.v1.Job":
		return jobjson.From(m.Interface().(*ytcaptionv1.Job))
	case "google.protobuf.Timestamp":
		return m.Interface().(*timestamppb.Timestamp).AsTime().UTC().Format(time.RFC3339Nano)
	}
	out := map[string]any{}
	fields := m.Descriptor().Fields()
	for i := range fields.Len() {
		fd := fields.Get(i)
		name := string(fd.Name())
		switch {
		case fd.IsList():
			l := m.Get(fd).List()
			items := make([]any, l.Len())
			for k := range l.Len() {
				items[k] = fieldValue(fd, l.Get(k))
			}
			out[name] = items
		case fd.Kind() == protoreflect.MessageKind && !m.Has(fd):
			out[name] = nil
		case fd.HasOptionalKeyword() && !m.Has(fd):
		default:
			out[name] = fieldValue(fd, m.Get(fd))
		}
	}
	return out
}

func fieldValue(fd protoreflect.FieldDescriptor, v protoreflect.Value) any {
	switch fd.Kind() {
	case protoreflect.MessageKind:
		return jsonValue(v.Message())
	case protoreflect.EnumKind:
		return string(fd.Enum().Values().ByNumber(v.Enum()).Name())
	}
	return v.Interface()
}

// protoCall adapts one unary Connect method of core (AdminService's, and
// GetAccount). The request message is
// read from the body (protojson; into the field bodyField when set), then
// path parameters and query parameters set fields of the same names (in
// bodyField's message when it has them). The reply is jsonValue of the
// response message.
func protoCall[Req, Res any](s *server, method func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error), bodyField string) fiber.Handler {
	return func(c *fiber.Ctx) error {
		msg := new(Req)
		top := any(msg).(proto.Message).ProtoReflect()
		target := top
		if bodyField != "" {
			fd := top.Descriptor().Fields().ByName(protoreflect.Name(bodyField))
			target = top.Mutable(fd).Message()
		}
		if body := c.Request().Body(); len(body) > 0 { // as sent: never inflated
			if len(body) > s.cfg.MaxBodyBytes {
				return codedError(errcode.RequestTooLarge, fmt.Sprintf("the body is larger than %d bytes", s.cfg.MaxBodyBytes))
			}
			if err := protojson.Unmarshal(body, target.Interface()); err != nil {
				return codedError(errcode.InvalidJSON, "the body does not fit this call: "+err.Error())
			}
		}
		for _, p := range c.Route().Params {
			if err := setField(target, top, p, c.Params(p)); err != nil {
				return err
			}
		}
		var qerr error
		c.Context().QueryArgs().VisitAll(func(k, v []byte) {
			if qerr == nil {
				qerr = setField(target, top, string(k), string(v))
			}
		})
		if qerr != nil {
			return qerr
		}
		ctx, cancel, req := call(s, c, msg)
		defer cancel()
		resp, err := method(ctx, req)
		if err != nil {
			return err
		}
		if id := c.Params("id"); id != "" && c.Method() != fiber.MethodGet {
			s.Finished.Forget(id) // retried or cancelled: this edge's copy is stale
		}
		return c.JSON(jsonValue(any(resp.Msg).(proto.Message).ProtoReflect()))
	}
}

// setField sets the scalar field name of m (else of fallback) from text.
func setField(m, fallback protoreflect.Message, name, text string) error {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		m = fallback
		fd = m.Descriptor().Fields().ByName(protoreflect.Name(name))
	}
	if fd == nil || fd.IsList() || fd.IsMap() {
		return codedError(errcode.InvalidArgument, fmt.Sprintf("unknown parameter %q", name))
	}
	bad := func(want string) error {
		return codedError(errcode.InvalidArgument, fmt.Sprintf("%s must be %s, got %q", name, want, text))
	}
	var v protoreflect.Value
	switch fd.Kind() {
	case protoreflect.StringKind:
		v = protoreflect.ValueOfString(strings.Clone(text))
	case protoreflect.Int32Kind:
		n, err := strconv.ParseInt(text, 10, 32)
		if err != nil {
			return bad("a whole number")
		}
		v = protoreflect.ValueOfInt32(int32(n))
	case protoreflect.BoolKind:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return bad("true or false")
		}
		v = protoreflect.ValueOfBool(b)
	case protoreflect.MessageKind:
		if fd.Message().FullName() != "google.protobuf.Timestamp" {
			return codedError(errcode.InvalidArgument, fmt.Sprintf("parameter %q goes in the body", name))
		}
		t, err := time.Parse(time.RFC3339, text)
		if err != nil {
			return bad("an RFC 3339 time such as 2026-11-01T00:00:00Z")
		}
		v = protoreflect.ValueOfMessage(timestamppb.New(t).ProtoReflect())
	default:
		return codedError(errcode.InvalidArgument, fmt.Sprintf("parameter %q goes in the body", name))
	}
	m.Set(fd, v)
	return nil
}
