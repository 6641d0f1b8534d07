package api

import (
	"context"
	"time"

	"connectrpc.com/connect"
	"google.golang.org/protobuf/proto"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/render"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/sharetoken"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// A share link lives DefaultShareTTL unless its owner asks otherwise,
// between MinShareTTL and MaxShareTTL.
const (
	DefaultShareTTL = 7 * 24 * time.Hour
	MinShareTTL     = time.Minute
	MaxShareTTL     = 90 * 24 * time.Hour
)

func (s *JobService) CreateShare(ctx context.Context, req *connect.Request[ytcaptionv1.CreateShareRequest]) (*connect.Response[ytcaptionv1.CreateShareResponse], error) {
	sh, token, err := s.createShare(ctx, req.Msg)
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	s.log.InfoContext(ctx, "share link created", "job_id", sh.JobID, "share_id", sh.ID)
	return connect.NewResponse(&ytcaptionv1.CreateShareResponse{Share: shareToProto(sh), Token: token}), nil
}

func (s *JobService) createShare(ctx context.Context, m *ytcaptionv1.CreateShareRequest) (store.Share, string, error) {
	ttl := DefaultShareTTL
	if secs := m.GetExpiresInSeconds(); secs != 0 {
		if secs < int64(MinShareTTL/time.Second) || secs > int64(MaxShareTTL/time.Second) {
			return store.Share{}, "", job.Errorf(job.CodeInvalidArgument, "expires_in_seconds must be between %d (a minute) and %d (90 days), got %d",
				int64(MinShareTTL/time.Second), int64(MaxShareTTL/time.Second), secs)
		}
		ttl = time.Duration(secs) * time.Second
	}
	var revision *int
	if m.Revision != nil {
		r := int(m.GetRevision())
		if r < 0 {
			return store.Share{}, "", job.Errorf(job.CodeInvalidArgument, "revision must be 0 or more, got %d", r)
		}
		revision = &r // the store refuses one the job does not have
	}
	token, hash := sharetoken.New()
	now := s.now()
	sh, err := s.store.CreateShare(ctx, store.NewShare{UserID: userID(ctx), JobID: m.GetJobId(), TokenHash: hash, Revision: revision,
		Now: now, ExpiresAt: now.Add(ttl)})
	return sh, token, err
}

func (s *JobService) ListShares(ctx context.Context, req *connect.Request[ytcaptionv1.ListSharesRequest]) (*connect.Response[ytcaptionv1.ListSharesResponse], error) {
	shs, err := s.store.ListShares(ctx, userID(ctx), req.Msg.GetJobId())
	if err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	resp := &ytcaptionv1.ListSharesResponse{Shares: make([]*ytcaptionv1.Share, 0, len(shs))}
	for _, sh := range shs {
		resp.Shares = append(resp.Shares, shareToProto(sh))
	}
	return connect.NewResponse(resp), nil
}

func (s *JobService) RevokeShare(ctx context.Context, req *connect.Request[ytcaptionv1.RevokeShareRequest]) (*connect.Response[ytcaptionv1.RevokeShareResponse], error) {
	if err := s.store.RevokeShare(ctx, userID(ctx), req.Msg.GetJobId(), req.Msg.GetShareId(), s.now()); err != nil {
		return nil, toConnectError(ctx, s.log, err)
	}
	s.log.InfoContext(ctx, "share link revoked", "job_id", req.Msg.GetJobId(), "share_id", req.Msg.GetShareId())
	return connect.NewResponse(&ytcaptionv1.RevokeShareResponse{}), nil
}

func shareToProto(sh store.Share) *ytcaptionv1.Share {
	return &ytcaptionv1.Share{Id: sh.ID, JobId: sh.JobID, CreatedAt: ts(sh.CreatedAt), ExpiresAt: ts(sh.ExpiresAt), RevokedAt: ts(sh.RevokedAt),
		Revision: shownRevision(sh)}
}

// ShareService opens share links for the edge's public routes. It has no
// user: each call finds the link by its token's hash, then reads the job
// as its owner, through the JobService's own reads.
type ShareService struct {
	jobs *JobService
}

// resolve finds token's live link and returns the context to read its job
// in, as the job's owner. Every reason a link does not open is
// share_not_found; a malformed token is refused before the store is asked.
func (s *ShareService) resolve(ctx context.Context, token string) (context.Context, store.Share, error) {
	if !sharetoken.Valid(token) {
		return nil, store.Share{}, store.ErrShareNotFound
	}
	sh, err := s.jobs.store.ResolveShare(ctx, sharetoken.Hash(token), s.jobs.now())
	if err != nil {
		return nil, store.Share{}, err
	}
	// The owner's id, never an empty one: the store reads an empty user's
	// "own" job as anybody's.
	return context.WithValue(ctx, userKey{}, sh.UserID), sh, nil
}

// sharedJob is the link's job, read as its owner (the returned context),
// or share_not_found for a link that does not open or whose job is gone.
func (s *ShareService) sharedJob(ctx context.Context, token string) (context.Context, store.Share, job.Job, error) {
	owner, sh, err := s.resolve(ctx, token)
	if err != nil {
		return nil, store.Share{}, job.Job{}, err
	}
	j, err := s.jobs.store.GetJob(owner, sh.UserID, sh.JobID)
	if err != nil {
		return nil, store.Share{}, job.Job{}, sharedError(err)
	}
	return owner, sh, j, nil
}

func (s *ShareService) GetSharedJob(ctx context.Context, req *connect.Request[ytcaptionv1.GetSharedJobRequest]) (*connect.Response[ytcaptionv1.GetSharedJobResponse], error) {
	resp, err := s.getSharedJob(ctx, req.Msg.GetToken())
	if err != nil {
		return nil, toConnectError(ctx, s.jobs.log, sharedError(err))
	}
	return connect.NewResponse(resp), nil
}

func (s *ShareService) getSharedJob(ctx context.Context, token string) (*ytcaptionv1.GetSharedJobResponse, error) {
	owner, sh, j, err := s.sharedJob(ctx, token)
	if err != nil {
		return nil, err
	}
	t, err := s.jobs.transcript(owner, sh.JobID, shownRevision(sh))
	if err != nil {
		return nil, err
	}
	// The revision is the transcript's, read with its segments: a save
	// since the job was read cannot make the two disagree.
	resp := &ytcaptionv1.GetSharedJobResponse{Job: &ytcaptionv1.SharedJob{Id: j.ID, Title: j.MediaTitle, DurationSeconds: j.MediaDuration.Seconds(),
		Language: t.Language, CreatedAt: ts(j.CreatedAt), Revision: int32(t.Revision)}}
	for _, sg := range render.Named(t) {
		sg.Words = nil
		resp.Segments = append(resp.Segments, segmentToProto(sg))
	}
	return resp, nil
}

// shownRevision is the revision sh shows: the one it pins, or nil for the
// latest when it is opened.
func shownRevision(sh store.Share) *int32 {
	if sh.Revision == nil {
		return nil
	}
	r := int32(*sh.Revision)
	return &r
}

// GetSharedTranscript is the owner's GetTranscript of the link's job, of
// the revision the link shows.
func (s *ShareService) GetSharedTranscript(ctx context.Context, req *connect.Request[ytcaptionv1.GetSharedTranscriptRequest]) (*connect.Response[ytcaptionv1.GetSharedTranscriptResponse], error) {
	owner, sh, j, err := s.sharedJob(ctx, req.Msg.GetToken())
	if err != nil {
		return nil, toConnectError(ctx, s.jobs.log, err)
	}
	m, _ := proto.Clone(req.Msg.GetTranscript()).(*ytcaptionv1.GetTranscriptRequest)
	if m == nil {
		m = &ytcaptionv1.GetTranscriptRequest{}
	}
	// The link's job and revision, whichever its reader asked for.
	m.Id, m.Revision = sh.JobID, shownRevision(sh)
	resp, err := s.jobs.GetTranscript(owner, connect.NewRequest(m))
	if err != nil {
		if code := errcode.OfConnect(err); code == job.CodeNotFound || code == job.CodeExpired || code == job.CodeNotReady {
			return nil, toConnectError(ctx, s.jobs.log, store.ErrShareNotFound)
		}
		return nil, err
	}
	return connect.NewResponse(&ytcaptionv1.GetSharedTranscriptResponse{ContentType: resp.Msg.GetContentType(), Content: resp.Msg.GetContent(), Title: j.MediaTitle}), nil
}

// GetSharedAudio presigns the shared job's audio, as GetJobAudio does for
// its owner.
func (s *ShareService) GetSharedAudio(ctx context.Context, req *connect.Request[ytcaptionv1.GetSharedAudioRequest]) (*connect.Response[ytcaptionv1.GetSharedAudioResponse], error) {
	_, _, j, err := s.sharedJob(ctx, req.Msg.GetToken())
	if err != nil {
		return nil, toConnectError(ctx, s.jobs.log, err)
	}
	a, err := s.jobs.audioURL(ctx, j)
	if err != nil {
		return nil, toConnectError(ctx, s.jobs.log, err)
	}
	return connect.NewResponse(&ytcaptionv1.GetSharedAudioResponse{Audio: a}), nil
}

// sharedError keeps a job or transcript that is gone (deleted, expired)
// from saying more than share_not_found.
func sharedError(err error) error {
	if code := job.CodeOf(err); code == job.CodeNotFound || code == job.CodeExpired || code == job.CodeNotReady {
		return store.ErrShareNotFound
	}
	return err
}
