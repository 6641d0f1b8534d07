package api

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/nomad"
	"github.com/ytcaption/ytcaption/core/internal/outbound"
	"github.com/ytcaption/ytcaption/core/internal/render"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/breaker"
	"github.com/ytcaption/ytcaption/internal/errcode"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// Breakers lists the circuit breakers an operator may see and reset.
type Breakers func() []*breaker.Breaker

// AdminService implements ytcaptionv1connect.AdminServiceHandler. Its
// interceptor admits only admins; every change is audited under Actor.
type AdminService struct {
	log         *slog.Logger
	store       *store.Store
	jobs        *JobService
	breakers    Breakers
	nomad       *nomad.Fleet   // nil: core does not know Nomad
	maxDuration time.Duration  // the longest media core takes: the floor of drain deadlines
	outbound    *outbound.Pool // nil: no pool to show or tell
}

type actorKey struct{}

// Actor names the admin making a call, as the audit log records it.
func Actor(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string)
	return a
}

// WithActor is ctx for a change made by actor (the dashboard's sign-in).
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// adminAuth admits the edge calling for a user whose role is admin now —
// read from the database, not trusted from the edge's cache.
func adminAuth(token string, st *store.Store) authenticator {
	edge := serviceAuth(token, true)
	return func(ctx context.Context, h http.Header) (context.Context, error) {
		ctx, err := edge(ctx, h)
		if err != nil {
			return nil, err
		}
		a, err := st.GetAccount(ctx, userID(ctx))
		if err != nil {
			return nil, errcode.Connect(connect.CodePermissionDenied, job.CodeForbidden, "the admin API needs an admin's API key")
		}
		if a.Role != store.RoleAdmin {
			return nil, errcode.Connect(connect.CodePermissionDenied, job.CodeForbidden, "the admin API needs an admin's API key")
		}
		return WithActor(ctx, "admin:"+a.Name), nil
	}
}

func (s *AdminService) fail(ctx context.Context, err error) error {
	return toConnectError(ctx, s.log, err)
}

// user is an account with its usage this month.
func (s *AdminService) user(ctx context.Context, a store.Account) (*ytcaptionv1.User, error) {
	u, err := s.store.GetUsage(ctx, a.ID)
	if err != nil {
		return nil, err
	}
	return userToProto(a, u), nil
}

func userToProto(a store.Account, u store.Usage) *ytcaptionv1.User {
	out := &ytcaptionv1.User{
		Id: a.ID, Name: a.Name, Role: string(a.Role), Plan: planToProto(a.Plan), WebhookUrl: a.WebhookURL, WebhookSecret: a.WebhookSecret,
		Email: a.Email, LiveKeys: int32(a.Keys), CreatedAt: timestamppb.New(a.CreatedAt), Quota: quotaToProto(u),
	}
	if a.MonthlyMinutes != nil {
		out.MonthlyMinutes = ptr(int32(*a.MonthlyMinutes))
	}
	if a.MaxConcurrent != nil {
		out.MaxConcurrent = ptr(int32(*a.MaxConcurrent))
	}
	return out
}

func ptr[T any](v T) *T { return &v }

// emailRE is a plain address: no display name, no header-breaking bytes.
var emailRE = regexp.MustCompile(`^[A-Za-z0-9.!#$%&'*+/=?^_{|}~-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$`)

func (s *AdminService) ListUsers(ctx context.Context, _ *connect.Request[ytcaptionv1.ListUsersRequest]) (*connect.Response[ytcaptionv1.ListUsersResponse], error) {
	as, err := s.store.ListUsers(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	// Every user's usage in one query, not one query per user.
	usage, err := s.store.ListUsage(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &ytcaptionv1.ListUsersResponse{Users: []*ytcaptionv1.User{}}
	for _, a := range as {
		u, ok := usage[a.ID]
		if !ok {
			continue // deleted since the list was read
		}
		out.Users = append(out.Users, userToProto(a, u))
	}
	return connect.NewResponse(out), nil
}

func (s *AdminService) GetUser(ctx context.Context, req *connect.Request[ytcaptionv1.GetUserRequest]) (*connect.Response[ytcaptionv1.GetUserResponse], error) {
	a, err := s.store.GetAccount(ctx, req.Msg.GetUserId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	u, err := s.user(ctx, a)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&ytcaptionv1.GetUserResponse{User: u}), nil
}

func (s *AdminService) CreateUser(ctx context.Context, req *connect.Request[ytcaptionv1.CreateUserRequest]) (*connect.Response[ytcaptionv1.CreateUserResponse], error) {
	m := req.Msg
	role, plan := store.Role(m.GetRole()), m.GetPlan()
	if role == "" {
		role = store.RoleUser
	}
	if plan == "" {
		plan = store.DefaultPlan
	}
	created, err := s.store.CreateUser(ctx, m.GetName(), role, plan)
	if err == nil {
		err = s.store.Audit(ctx, Actor(ctx), "create_user", created.Name, map[string]any{"user_id": created.ID, "role": role, "plan": plan})
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	resp, err := s.GetUser(ctx, connect.NewRequest(&ytcaptionv1.GetUserRequest{UserId: created.ID}))
	if err != nil {
		return nil, err
	}
	return connect.NewResponse(&ytcaptionv1.CreateUserResponse{User: resp.Msg.GetUser()}), nil
}

func (s *AdminService) UpdateUser(ctx context.Context, req *connect.Request[ytcaptionv1.UpdateUserRequest]) (*connect.Response[ytcaptionv1.UpdateUserResponse], error) {
	m := req.Msg
	p := store.AccountPatch{Plan: m.Plan, Role: m.Role, WebhookURL: m.WebhookUrl, Email: m.Email, RotateWebhookSecret: m.GetRotateWebhookSecret()}
	if m.WebhookUrl != nil && *m.WebhookUrl != "" {
		if err := s.jobs.checkWebhookURL(*m.WebhookUrl); err != nil {
			return nil, s.fail(ctx, err)
		}
	}
	if m.Email != nil && *m.Email != "" && !emailRE.MatchString(*m.Email) {
		return nil, s.fail(ctx, job.Errorf(job.CodeInvalidArgument, "email %q is not an address", *m.Email))
	}
	if m.MonthlyMinutes != nil {
		p.MonthlyMinutes = ptr(int(*m.MonthlyMinutes))
	}
	if m.MaxConcurrent != nil {
		p.MaxConcurrent = ptr(int(*m.MaxConcurrent))
	}
	a, err := s.store.UpdateAccount(ctx, Actor(ctx), m.GetUserId(), p)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	u, err := s.user(ctx, a)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&ytcaptionv1.UpdateUserResponse{User: u}), nil
}

func (s *AdminService) DeleteUser(ctx context.Context, req *connect.Request[ytcaptionv1.DeleteUserRequest]) (*connect.Response[ytcaptionv1.DeleteUserResponse], error) {
	a, err := s.store.GetAccount(ctx, req.Msg.GetUserId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if "admin:"+a.Name == Actor(ctx) {
		return nil, s.fail(ctx, job.Errorf(job.CodeConflict, "an admin cannot delete themselves"))
	}
	n, err := s.store.DeleteUser(ctx, Actor(ctx), a.Name)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&ytcaptionv1.DeleteUserResponse{JobsDeleted: int32(n)}), nil
}

func keyToProto(k store.APIKey) *ytcaptionv1.ApiKey {
	out := &ytcaptionv1.ApiKey{Id: k.ID, UserId: k.UserID, Name: k.Name, Prefix: k.Prefix, CreatedAt: timestamppb.New(k.CreatedAt)}
	if k.RevokedAt != nil {
		out.RevokedAt = timestamppb.New(*k.RevokedAt)
	}
	return out
}

func (s *AdminService) ListKeys(ctx context.Context, req *connect.Request[ytcaptionv1.ListKeysRequest]) (*connect.Response[ytcaptionv1.ListKeysResponse], error) {
	if id := req.Msg.GetUserId(); id != "" { // "": every user's
		if _, err := s.store.GetAccount(ctx, id); err != nil {
			return nil, s.fail(ctx, err)
		}
	}
	ks, err := s.store.ListKeys(ctx, req.Msg.GetUserId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &ytcaptionv1.ListKeysResponse{Keys: []*ytcaptionv1.ApiKey{}}
	for _, k := range ks {
		out.Keys = append(out.Keys, keyToProto(k))
	}
	return connect.NewResponse(out), nil
}

func (s *AdminService) CreateKey(ctx context.Context, req *connect.Request[ytcaptionv1.CreateKeyRequest]) (*connect.Response[ytcaptionv1.CreateKeyResponse], error) {
	if len(req.Msg.GetName()) > 100 {
		return nil, s.fail(ctx, job.Errorf(job.CodeInvalidArgument, "a key's name is at most 100 characters"))
	}
	k, secret, err := s.store.IssueKey(ctx, Actor(ctx), req.Msg.GetUserId(), req.Msg.GetName())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&ytcaptionv1.CreateKeyResponse{Key: keyToProto(k), Secret: secret}), nil
}

func (s *AdminService) RevokeKey(ctx context.Context, req *connect.Request[ytcaptionv1.RevokeKeyRequest]) (*connect.Response[ytcaptionv1.RevokeKeyResponse], error) {
	k, err := s.store.RevokeKey(ctx, Actor(ctx), req.Msg.GetKeyId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&ytcaptionv1.RevokeKeyResponse{Key: keyToProto(k)}), nil
}

func (s *AdminService) RotateKey(ctx context.Context, req *connect.Request[ytcaptionv1.RotateKeyRequest]) (*connect.Response[ytcaptionv1.RotateKeyResponse], error) {
	k, secret, err := s.store.RotateKey(ctx, Actor(ctx), req.Msg.GetKeyId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&ytcaptionv1.RotateKeyResponse{Key: keyToProto(k), Secret: secret}), nil
}

func planToProto(p store.Plan) *ytcaptionv1.Plan {
	return &ytcaptionv1.Plan{Name: p.Name, CreateRate: int32(p.CreateRate), CreateBurst: int32(p.CreateBurst), ReadRate: int32(p.ReadRate),
		ReadBurst: int32(p.ReadBurst), MonthlyMinutes: int32(p.MonthlyMinutes), MaxConcurrent: int32(p.MaxConcurrent), MaxStreams: int32(p.MaxStreams),
		MonthlyTranslationChars: int32(p.MonthlyTranslationChars)}
}

func (s *AdminService) ListPlans(ctx context.Context, _ *connect.Request[ytcaptionv1.ListPlansRequest]) (*connect.Response[ytcaptionv1.ListPlansResponse], error) {
	ps, err := s.store.ListPlans(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &ytcaptionv1.ListPlansResponse{Plans: []*ytcaptionv1.Plan{}}
	for _, p := range ps {
		out.Plans = append(out.Plans, planToProto(p))
	}
	return connect.NewResponse(out), nil
}

func (s *AdminService) SetPlan(ctx context.Context, req *connect.Request[ytcaptionv1.SetPlanRequest]) (*connect.Response[ytcaptionv1.SetPlanResponse], error) {
	m := req.Msg.GetPlan()
	if m == nil {
		return nil, s.fail(ctx, job.Errorf(job.CodeInvalidArgument, "send the plan"))
	}
	p := store.Plan{Name: m.GetName(), CreateRate: int(m.GetCreateRate()), CreateBurst: int(m.GetCreateBurst()), ReadRate: int(m.GetReadRate()),
		ReadBurst: int(m.GetReadBurst()), MonthlyMinutes: int(m.GetMonthlyMinutes()), MaxConcurrent: int(m.GetMaxConcurrent()),
		MaxStreams: int(m.GetMaxStreams()), MonthlyTranslationChars: int(m.GetMonthlyTranslationChars())}
	err := s.store.SetPlan(ctx, p)
	if err == nil {
		err = s.store.Audit(ctx, Actor(ctx), "set_plan", p.Name, map[string]any{"plan": p})
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	got, err := s.store.GetPlan(ctx, p.Name)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&ytcaptionv1.SetPlanResponse{Plan: planToProto(got)}), nil
}

// parseMonth reads "YYYY-MM"; empty is def.
func parseMonth(v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	t, err := time.Parse("2006-01", v)
	if err != nil {
		return time.Time{}, job.Errorf(job.CodeInvalidArgument, "a month is written YYYY-MM, got %q", v)
	}
	return t, nil
}

func (s *AdminService) UsageReport(ctx context.Context, req *connect.Request[ytcaptionv1.UsageReportRequest]) (*connect.Response[ytcaptionv1.UsageReportResponse], error) {
	now := time.Now().UTC()
	to, err := parseMonth(req.Msg.GetTo(), now)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	from, err := parseMonth(req.Msg.GetFrom(), to)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	if from.After(to) {
		return nil, s.fail(ctx, job.Errorf(job.CodeInvalidArgument, "from is after to"))
	}
	rows, err := s.store.UsageReport(ctx, from, to)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &ytcaptionv1.UsageReportResponse{Rows: []*ytcaptionv1.UsageRow{}}
	for _, r := range rows {
		out.Rows = append(out.Rows, &ytcaptionv1.UsageRow{UserId: r.UserID, UserName: r.UserName, Month: r.Month.Format("2006-01"),
			Jobs: int32(r.Jobs), AudioMinutes: float64(r.AudioMS) / 60_000})
	}
	return connect.NewResponse(out), nil
}

func (s *AdminService) SearchJobs(ctx context.Context, req *connect.Request[ytcaptionv1.SearchJobsRequest]) (*connect.Response[ytcaptionv1.SearchJobsResponse], error) {
	m := req.Msg
	f := store.JobFilter{UserID: m.GetUserId(), Status: job.Status(m.GetStatus()), URLContains: m.GetUrlContains(), ErrorCode: m.GetErrorCode(), Limit: int(m.GetLimit())}
	if m.CreatedAfter != nil {
		f.CreatedAfter = m.GetCreatedAfter().AsTime()
	}
	if m.CreatedBefore != nil {
		f.CreatedBefore = m.GetCreatedBefore().AsTime()
	}
	js, err := s.store.SearchJobs(ctx, f)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &ytcaptionv1.SearchJobsResponse{Jobs: []*ytcaptionv1.AdminJob{}}
	for _, j := range js {
		out.Jobs = append(out.Jobs, &ytcaptionv1.AdminJob{Job: JobToProto(j), UserId: j.UserID})
	}
	return connect.NewResponse(out), nil
}

func (s *AdminService) GetJobDetail(ctx context.Context, req *connect.Request[ytcaptionv1.GetJobDetailRequest]) (*connect.Response[ytcaptionv1.GetJobDetailResponse], error) {
	j, err := s.store.GetJob(ctx, "", req.Msg.GetId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	attempts, err := s.store.Attempts(ctx, j.ID)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	ns, err := s.store.JobNotifications(ctx, j.ID)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &ytcaptionv1.GetJobDetailResponse{Job: &ytcaptionv1.AdminJob{Job: JobToProto(j), UserId: j.UserID},
		Attempts: []*ytcaptionv1.JobAttempt{}, Notifications: []*ytcaptionv1.Notification{}}
	switch b, err := s.store.BatchOfJob(ctx, j.ID); {
	case err == nil:
		out.Batch = BatchToProto(b)
	case job.CodeOf(err) != job.CodeNotFound:
		return nil, s.fail(ctx, err)
	}
	for _, a := range attempts {
		out.Attempts = append(out.Attempts, &ytcaptionv1.JobAttempt{Attempt: int32(a.Attempt), Stage: a.Stage, Owner: a.Owner,
			ErrorCode: a.ErrorCode, ErrorMessage: a.ErrorMessage, At: timestamppb.New(a.At)})
	}
	for _, n := range ns {
		pn := &ytcaptionv1.Notification{Id: n.ID, Channel: n.Channel, Target: n.Target, Event: n.Event, State: n.State,
			Attempts: int32(n.Attempts), NextAttemptAt: timestamppb.New(n.NextAttemptAt)}
		for _, a := range n.Log {
			pn.Log = append(pn.Log, &ytcaptionv1.DeliveryAttempt{At: timestamppb.New(a.At), StatusCode: int32(a.StatusCode), Error: a.Error,
				DurationMs: int32(a.Duration.Milliseconds())})
		}
		out.Notifications = append(out.Notifications, pn)
	}
	return connect.NewResponse(out), nil
}

// Transcript is any user's finished job's transcript in format f, with the
// format's defaults: the dashboard's downloads. The admin service's
// callers are admins already, so no user scopes the job.
func (s *AdminService) Transcript(ctx context.Context, id string, f render.Format) ([]byte, error) {
	t, err := s.jobs.transcript(context.WithValue(ctx, userKey{}, ""), id, nil) // the latest revision
	if err != nil {
		return nil, err
	}
	return render.Render(f, t, render.Options{})
}

func (s *AdminService) RetryJob(ctx context.Context, req *connect.Request[ytcaptionv1.RetryJobRequest]) (*connect.Response[ytcaptionv1.RetryJobResponse], error) {
	j, err := s.store.RetryJob(ctx, Actor(ctx), req.Msg.GetId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&ytcaptionv1.RetryJobResponse{Job: JobToProto(j)}), nil
}

func (s *AdminService) AdminCancelJob(ctx context.Context, req *connect.Request[ytcaptionv1.AdminCancelJobRequest]) (*connect.Response[ytcaptionv1.AdminCancelJobResponse], error) {
	j, err := s.jobs.cancel(ctx, "", req.Msg.GetId())
	if err == nil {
		err = s.store.Audit(ctx, Actor(ctx), "cancel_job", j.ID, map[string]any{"user_id": j.UserID, "status": j.Status})
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&ytcaptionv1.AdminCancelJobResponse{Job: JobToProto(j)}), nil
}

func (s *AdminService) SearchBatches(ctx context.Context, req *connect.Request[ytcaptionv1.SearchBatchesRequest]) (*connect.Response[ytcaptionv1.SearchBatchesResponse], error) {
	m := req.Msg
	limit := int(m.GetLimit())
	if limit <= 0 || limit > 500 {
		limit = 50
	}
	// One more than the page tells whether another page follows.
	bs, err := s.store.SearchBatches(ctx, store.BatchFilter{UserID: m.GetUserId(), Status: m.GetStatus(), Before: m.GetPageToken(), Limit: limit + 1})
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &ytcaptionv1.SearchBatchesResponse{Batches: []*ytcaptionv1.AdminBatch{}}
	if len(bs) > limit {
		bs = bs[:limit]
		out.NextPageToken = bs[limit-1].ID
	}
	for _, b := range bs {
		out.Batches = append(out.Batches, &ytcaptionv1.AdminBatch{Batch: BatchToProto(b), UserId: b.UserID})
	}
	return connect.NewResponse(out), nil
}

func (s *AdminService) GetBatchDetail(ctx context.Context, req *connect.Request[ytcaptionv1.GetBatchDetailRequest]) (*connect.Response[ytcaptionv1.GetBatchDetailResponse], error) {
	b, err := s.store.GetBatch(ctx, "", req.Msg.GetId())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	// A batch has at most MaxBatchItems children: one page holds them all.
	js, err := s.store.ListBatchJobs(ctx, "", b.ID, store.MaxBatchItems, 0)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &ytcaptionv1.GetBatchDetailResponse{Batch: &ytcaptionv1.AdminBatch{Batch: BatchToProto(b), UserId: b.UserID}, Jobs: []*ytcaptionv1.Job{}}
	for _, j := range js {
		out.Jobs = append(out.Jobs, JobToProto(j))
	}
	return connect.NewResponse(out), nil
}

func (s *AdminService) AdminCancelBatch(ctx context.Context, req *connect.Request[ytcaptionv1.AdminCancelBatchRequest]) (*connect.Response[ytcaptionv1.AdminCancelBatchResponse], error) {
	b, err := s.store.CancelBatch(ctx, "", req.Msg.GetId())
	if err == nil {
		err = s.store.Audit(ctx, Actor(ctx), "cancel_batch", b.ID, map[string]any{"user_id": b.UserID, "status": b.Status,
			"cancelled_jobs": b.Counts.Cancelled})
	}
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	return connect.NewResponse(&ytcaptionv1.AdminCancelBatchResponse{Batch: BatchToProto(b)}), nil
}

func (s *AdminService) ListAgents(ctx context.Context, _ *connect.Request[ytcaptionv1.ListAgentsRequest]) (*connect.Response[ytcaptionv1.ListAgentsResponse], error) {
	as, err := s.store.ListAgents(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &ytcaptionv1.ListAgentsResponse{Agents: []*ytcaptionv1.Agent{}}
	var nodes map[string]nomad.Node
	if s.nomad != nil {
		names := make([]string, len(as))
		for i, a := range as {
			names[i] = a.NodeID
		}
		if nodes, err = s.nomad.Nodes(ctx, names); err != nil {
			// The fleet as core knows it is still worth showing.
			s.log.WarnContext(ctx, "fleet view without Nomad", "err", err)
			out.NomadError = err.Error()
		}
	}
	for _, a := range as {
		out.Agents = append(out.Agents, agentToProto(a, nodes))
	}
	return connect.NewResponse(out), nil
}

func agentToProto(a store.Agent, nodes map[string]nomad.Node) *ytcaptionv1.Agent {
	out := &ytcaptionv1.Agent{NodeId: a.NodeID, Engines: a.Engines, Models: a.Models, Version: a.Version, Draining: a.Draining,
		CurrentJobs: a.CurrentJobs, FirstSeen: timestamppb.New(a.FirstSeen), LastSeen: timestamppb.New(a.LastSeen),
		Slots: int32(a.Slots.Total), SlotsBusy: int32(a.Slots.Busy)}
	if n, ok := nodes[a.NodeID]; ok {
		out.Nomad = &ytcaptionv1.NomadNode{Id: n.ID, Status: n.Status, Eligibility: n.Eligibility, Drain: n.Drain}
		for _, al := range n.Allocations {
			out.Nomad.Allocations = append(out.Nomad.Allocations, &ytcaptionv1.NomadAllocation{Id: al.ID, JobId: al.JobID,
				TaskGroup: al.TaskGroup, ClientStatus: al.ClientStatus, DesiredStatus: al.DesiredStatus})
		}
	}
	return out
}

// DrainAgent hands the gpu-node no new jobs and drains its Nomad node, with
// a deadline no shorter than the longest job may take: core refuses media
// longer than maxDuration, and every engine transcribes faster than real time.
func (s *AdminService) DrainAgent(ctx context.Context, req *connect.Request[ytcaptionv1.DrainAgentRequest]) (*connect.Response[ytcaptionv1.DrainAgentResponse], error) {
	m := req.Msg
	deadline := max(time.Duration(m.GetDeadlineMinutes())*time.Minute, s.maxDuration)
	if m.GetUndo() {
		deadline = 0
	}
	detail := map[string]any{"deadline_minutes": int(deadline.Minutes())}
	if err := s.store.DrainAgent(ctx, Actor(ctx), m.GetNodeId(), !m.GetUndo(), detail); err != nil {
		return nil, s.fail(ctx, err)
	}
	var nodes map[string]nomad.Node
	if s.nomad != nil {
		n, err := s.nomad.Drain(ctx, m.GetNodeId(), deadline)
		if err != nil {
			return nil, s.fail(ctx, err)
		}
		nodes = map[string]nomad.Node{n.Name: n}
	}
	as, err := s.store.ListAgents(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &ytcaptionv1.DrainAgentResponse{DeadlineMinutes: int32(deadline.Minutes())}
	for _, a := range as {
		if a.NodeID == m.GetNodeId() {
			out.Agent = agentToProto(a, nodes)
		}
	}
	return connect.NewResponse(out), nil
}

func breakerToProto(b *breaker.Breaker) *ytcaptionv1.Breaker {
	return &ytcaptionv1.Breaker{Name: b.Name(), State: b.State(), ConsecutiveFailures: int32(b.Failures())}
}

func (s *AdminService) ListBreakers(ctx context.Context, _ *connect.Request[ytcaptionv1.ListBreakersRequest]) (*connect.Response[ytcaptionv1.ListBreakersResponse], error) {
	out := &ytcaptionv1.ListBreakersResponse{Breakers: []*ytcaptionv1.Breaker{}}
	for _, b := range s.breakers() {
		out.Breakers = append(out.Breakers, breakerToProto(b))
	}
	return connect.NewResponse(out), nil
}

func (s *AdminService) ResetBreaker(ctx context.Context, req *connect.Request[ytcaptionv1.ResetBreakerRequest]) (*connect.Response[ytcaptionv1.ResetBreakerResponse], error) {
	for _, b := range s.breakers() {
		if b.Name() == req.Msg.GetName() {
			prior := b.State()
			b.Reset()
			if err := s.store.Audit(ctx, Actor(ctx), "reset_breaker", b.Name(), map[string]any{"was": prior}); err != nil {
				return nil, s.fail(ctx, err)
			}
			return connect.NewResponse(&ytcaptionv1.ResetBreakerResponse{Breaker: breakerToProto(b)}), nil
		}
	}
	return nil, s.fail(ctx, job.Errorf(job.CodeNotFound, "no circuit breaker %q on this core replica", req.Msg.GetName()))
}

func (s *AdminService) ListAudit(ctx context.Context, req *connect.Request[ytcaptionv1.ListAuditRequest]) (*connect.Response[ytcaptionv1.ListAuditResponse], error) {
	limit := int(req.Msg.GetLimit())
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	var before time.Time
	if req.Msg.Before != nil {
		before = req.Msg.GetBefore().AsTime()
	}
	es, err := s.store.ListAudit(ctx, before, limit)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	out := &ytcaptionv1.ListAuditResponse{Entries: []*ytcaptionv1.AuditEntry{}}
	for _, e := range es {
		out.Entries = append(out.Entries, &ytcaptionv1.AuditEntry{At: timestamppb.New(e.At), Actor: e.Actor, Action: e.Action, Target: e.Target,
			Detail: string(e.Detail)})
	}
	return connect.NewResponse(out), nil
}

// quotaToProto is usage in minutes.
func quotaToProto(u store.Usage) *ytcaptionv1.Quota {
	rem := float64(u.RemainingMS()) / 60_000
	if u.RemainingMS() < 0 {
		rem = -1
	}
	return &ytcaptionv1.Quota{MonthlyMinutes: int32(u.MonthlyMinutes), MaxConcurrent: int32(u.MaxConcurrent),
		UsedMinutes: float64(u.UsedMS) / 60_000, PendingMinutes: float64(u.PendingMS) / 60_000, RemainingMinutes: rem,
		ActiveJobs: int32(u.Active), ResetsAt: timestamppb.New(u.ResetsAt)}
}

// resting is when each cookie file the pool holds wakes, by id.
func (s *AdminService) resting() map[string]time.Time {
	out := map[string]time.Time{}
	if s.outbound == nil {
		return out
	}
	for _, h := range s.outbound.Health() {
		if h.Kind == outbound.KindCookies && h.ID != "" && h.Resting {
			out[h.ID] = h.Until
		}
	}
	return out
}

// cookieFileToProto never carries the content: the store does not read it.
func cookieFileToProto(c store.CookieFile, resting map[string]time.Time) *ytcaptionv1.CookieFile {
	out := &ytcaptionv1.CookieFile{Id: c.ID, Name: c.Name, Enabled: c.Enabled, SizeBytes: int32(c.Size), CreatedAt: timestamppb.New(c.CreatedAt),
		LastFailureCode: c.LastFailureCode}
	if c.LastSuccessAt != nil {
		out.LastSuccessAt = timestamppb.New(*c.LastSuccessAt)
	}
	if c.LastFailureAt != nil {
		out.LastFailureAt = timestamppb.New(*c.LastFailureAt)
	}
	if until, ok := resting[c.ID]; ok {
		out.RestingUntil = timestamppb.New(until)
	}
	return out
}

func (s *AdminService) ListCookieFiles(ctx context.Context, _ *connect.Request[ytcaptionv1.ListCookieFilesRequest]) (*connect.Response[ytcaptionv1.ListCookieFilesResponse], error) {
	cs, err := s.store.ListCookieFiles(ctx)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	resting := s.resting()
	out := &ytcaptionv1.ListCookieFilesResponse{CookieFiles: []*ytcaptionv1.CookieFile{}}
	for _, c := range cs {
		out.CookieFiles = append(out.CookieFiles, cookieFileToProto(c, resting))
	}
	return connect.NewResponse(out), nil
}

// AddCookieFile checks the file is one yt-dlp will load before it stores
// it: a bad file found by the download stage would fail jobs instead.
func (s *AdminService) AddCookieFile(ctx context.Context, req *connect.Request[ytcaptionv1.AddCookieFileRequest]) (*connect.Response[ytcaptionv1.AddCookieFileResponse], error) {
	content := []byte(req.Msg.GetContent())
	if err := outbound.CheckCookies(content); err != nil {
		return nil, s.fail(ctx, err)
	}
	c, err := s.store.AddCookieFile(ctx, Actor(ctx), req.Msg.GetName(), content)
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.changedCookies(ctx)
	return connect.NewResponse(&ytcaptionv1.AddCookieFileResponse{CookieFile: cookieFileToProto(c, nil)}), nil
}

func (s *AdminService) UpdateCookieFile(ctx context.Context, req *connect.Request[ytcaptionv1.UpdateCookieFileRequest]) (*connect.Response[ytcaptionv1.UpdateCookieFileResponse], error) {
	if req.Msg.Enabled == nil {
		return nil, s.fail(ctx, job.Errorf(job.CodeInvalidArgument, "say whether the cookie file is enabled"))
	}
	c, err := s.store.SetCookieFileEnabled(ctx, Actor(ctx), req.Msg.GetCookieFileId(), req.Msg.GetEnabled())
	if err != nil {
		return nil, s.fail(ctx, err)
	}
	s.changedCookies(ctx)
	return connect.NewResponse(&ytcaptionv1.UpdateCookieFileResponse{CookieFile: cookieFileToProto(c, s.resting())}), nil
}

func (s *AdminService) DeleteCookieFile(ctx context.Context, req *connect.Request[ytcaptionv1.DeleteCookieFileRequest]) (*connect.Response[ytcaptionv1.DeleteCookieFileResponse], error) {
	if err := s.store.DeleteCookieFile(ctx, Actor(ctx), req.Msg.GetCookieFileId()); err != nil {
		return nil, s.fail(ctx, err)
	}
	s.changedCookies(ctx)
	return connect.NewResponse(&ytcaptionv1.DeleteCookieFileResponse{}), nil
}

// changedCookies has this replica's pool re-read the cookie files now;
// other replicas' pools re-read them within seconds anyway.
func (s *AdminService) changedCookies(ctx context.Context) {
	if s.outbound != nil {
		s.outbound.Invalidate(ctx)
	}
}

func (s *AdminService) ListOutbound(ctx context.Context, _ *connect.Request[ytcaptionv1.ListOutboundRequest]) (*connect.Response[ytcaptionv1.ListOutboundResponse], error) {
	out := &ytcaptionv1.ListOutboundResponse{Entries: []*ytcaptionv1.OutboundEntry{}}
	if s.outbound == nil {
		return connect.NewResponse(out), nil
	}
	ts := func(t time.Time) *timestamppb.Timestamp {
		if t.IsZero() {
			return nil
		}
		return timestamppb.New(t)
	}
	for _, h := range s.outbound.Health() {
		out.Entries = append(out.Entries, &ytcaptionv1.OutboundEntry{Kind: h.Kind, Name: h.Name, CookieFileId: h.ID, Resting: h.Resting,
			RestingUntil: ts(h.Until), RestingCode: h.Code, LastSuccessAt: ts(h.LastSuccess), LastFailureAt: ts(h.LastFailure),
			LastFailureCode: h.LastCode})
	}
	return connect.NewResponse(out), nil
}
