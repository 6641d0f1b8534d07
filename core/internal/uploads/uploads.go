// Package uploads is core's tus 1.0 endpoint (resumable uploads of any size,
// through the tusd library) at /v1/uploads/. Only the edge calls it: every
// request carries the service token and the id of the user the edge
// authenticated. An upload is recorded in the store before its first byte is
// accepted — its declared size must be within the deployment's maximum and
// the user within their quota — and is seen only by its owner. Bytes are
// staged in the blob store in parts, so any replica takes any request
// (staging.go); when the last one arrives the parts are composed into the
// file's content key (uploads/ab/<sha256>), exactly where UploadJob puts a
// small file, so a job created from it (CreateJob with upload_id) is an
// ordinary upload job for the fetch stage. Unfinished uploads, and finished ones no job took, expire
// and are swept by the leader (Run).
package uploads

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	tusd "github.com/tus/tusd/v2/pkg/handler"
	tuslog "golang.org/x/exp/slog"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/retention"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/svcauth"
)

// Path is where the endpoint is mounted, on core and on the edge alike.
const Path = "/v1/uploads"

// Defaults of Config.
const (
	DefaultMaxSize = 4 << 30
	DefaultExpiry  = 24 * time.Hour
)

// Config tunes the endpoint.
type Config struct {
	// Dir spools the part of a PATCH being received (at most 8 MiB per
	// request) before it goes to the blob store.
	Dir string
	// MaxSize is the largest upload, checked against Upload-Length before
	// the first byte; default DefaultMaxSize.
	MaxSize int64
	// Expiry is how long an upload lives from its creation; default
	// DefaultExpiry. A finished upload no job took is forgotten then too.
	Expiry time.Duration
	// ServiceToken is what the edge presents; nothing else is served.
	ServiceToken string
	// MaxOpenBytes bounds the declared sizes of one user's unfinished
	// uploads together — the staging disk they may claim; default
	// 2 × MaxSize.
	MaxOpenBytes int64
}

// Service serves /v1/uploads and sweeps expired uploads.
type Service struct {
	log    *slog.Logger
	cfg    Config
	store  *store.Store
	blobs  blob.Store
	tus    *tusd.Handler
	routed http.Handler
}

// New prepares the endpoint; Dir is created if need be.
func New(log *slog.Logger, cfg Config, st *store.Store, blobs blob.Store) (*Service, error) {
	if cfg.MaxSize <= 0 {
		cfg.MaxSize = DefaultMaxSize
	}
	if cfg.MaxOpenBytes <= 0 {
		cfg.MaxOpenBytes = 2 * cfg.MaxSize
	}
	if cfg.Expiry <= 0 {
		cfg.Expiry = DefaultExpiry
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("make upload dir: %w", err)
	}
	s := &Service{log: log, cfg: cfg, store: st, blobs: blobs}
	composer := tusd.NewStoreComposer()
	staging{s}.UseIn(composer)
	h, err := tusd.NewHandler(tusd.Config{
		StoreComposer:        composer,
		BasePath:             Path + "/",
		MaxSize:              cfg.MaxSize,
		DisableDownload:      true, // the bytes go to a job, never back out
		DisableConcatenation: true, // parts would dodge the size check at creation
		Cors:                 &tusd.CorsConfig{Disable: true},
		Logger:               tuslog.New(tuslog.NewTextHandler(io.Discard, nil)), // our own lines say what happened
		// tusd keeps a goroutine per request for this long after it ends,
		// giving a store time to save the bytes of a dropped PATCH. Ours
		// stages them without the request's cancellation, and so do our
		// callbacks, so nothing needs the default 10 s.
		GracefulRequestCompletionTimeout: 50 * time.Millisecond,
		PreUploadCreateCallback:          s.preCreate,
		PreFinishResponseCallback:        s.preFinish,
	})
	if err != nil {
		return nil, fmt.Errorf("tus handler: %w", err)
	}
	s.tus = h
	s.routed = http.StripPrefix(Path, h)
	return s, nil
}

// Register mounts the endpoint on mux.
func (s *Service) Register(mux *http.ServeMux) {
	mux.Handle(Path, s)
	mux.Handle(Path+"/", s)
}

type userKey struct{}

// ServeHTTP authenticates the edge, bounds a creation by its headers, and
// keeps each upload to its owner before tusd sees the request.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !svcauth.Equal(svcauth.Bearer(r.Header), s.cfg.ServiceToken) {
		writeError(w, errcode.Unauthorized, "uploads are served to the edge only")
		return
	}
	user := r.Header.Get(svcauth.UserHeader)
	if _, err := uuid.Parse(user); err != nil {
		writeError(w, errcode.Unauthorized, "no user named")
		return
	}
	r = r.WithContext(context.WithValue(r.Context(), userKey{}, user))
	w.Header().Set("Tus-Max-Size", strconv.FormatInt(s.cfg.MaxSize, 10))
	id := strings.Trim(strings.TrimPrefix(r.URL.Path, Path), "/")
	switch {
	case r.Method == http.MethodOptions:
	case id == "" && r.Method == http.MethodPost:
		if code, msg := s.checkCreation(r.Header); code != "" {
			writeError(w, code, msg)
			return
		}
	case id == "" || strings.Contains(id, "/"):
		writeError(w, errcode.NotFound, "no such upload")
		return
	default:
		u, err := s.store.GetUpload(r.Context(), user, id)
		if err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		if !u.Finished() && r.Method == http.MethodHead && u.Received == u.Size {
			// Every byte arrived but storing the file failed (the client
			// heard a 503): finish it now, or the client, seeing the full
			// offset, would think it done while no job can use it.
			if err := s.finish(r.Context(), u); err != nil {
				s.log.ErrorContext(r.Context(), "store a finished upload", "upload_id", u.ID, "err", err)
				writeError(w, errcode.Unavailable, "the upload arrived but could not be stored; retry")
				return
			}
			if u, err = s.store.GetUpload(r.Context(), user, id); err != nil {
				s.writeStoreError(w, r, err)
				return
			}
		}
		if u.Finished() {
			s.serveFinished(w, r, u)
			return
		}
		if r.Method == http.MethodPatch {
			// Raise the deadline core's server set for ordinary calls:
			// tusd moves it forward while bytes keep arriving
			// (NetworkTimeout) and cuts a stalled client.
			_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Minute))
		}
	}
	s.routed.ServeHTTP(w, r)
}

// checkCreation refuses, from the headers alone, what may never be
// stored: a size not declared up front (no deferred length), a size
// above the deployment's maximum, or a concatenation.
func (s *Service) checkCreation(h http.Header) (code, msg string) {
	if h.Get("Upload-Concat") != "" {
		return errcode.InvalidArgument, "concatenated uploads are not supported"
	}
	raw := h.Get("Upload-Length")
	if raw == "" {
		return errcode.InvalidArgument, "Upload-Length is required: the size of the file must be known before it is sent (no deferred length)"
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	switch {
	case err != nil || n < 0:
		return errcode.InvalidArgument, "Upload-Length must be a non-negative integer"
	case n == 0:
		return errcode.InvalidArgument, "the file is empty"
	case n > s.cfg.MaxSize:
		return errcode.RequestTooLarge, fmt.Sprintf("the file is %d bytes; uploads are at most %d bytes", n, s.cfg.MaxSize)
	}
	return "", ""
}

// preCreate runs before tusd stores anything: the quota is checked and the
// upload recorded under an id chosen here, so the row exists before a
// byte does.
func (s *Service) preCreate(ev tusd.HookEvent) (tusd.HTTPResponse, tusd.FileInfoChanges, error) {
	user, _ := ev.Context.Value(userKey{}).(string)
	if ev.Upload.SizeIsDeferred || ev.Upload.Size <= 0 || ev.Upload.Size > s.cfg.MaxSize {
		// checkCreation saw the headers already; this is the second lock.
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(errcode.InvalidArgument, "Upload-Length is required and within the maximum")
	}
	ctx := context.WithoutCancel(ev.Context)
	if err := s.store.CheckQuota(ctx, user); err != nil {
		code := job.CodeOf(err)
		if code == job.CodeInternal {
			s.log.ErrorContext(ctx, "check quota for an upload", "err", err)
			return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(errcode.Internal, "internal error")
		}
		var je *job.Error
		errors.As(err, &je)
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(code, je.Message)
	}
	open, err := s.store.OpenUploadBytes(ctx, user, time.Now())
	if err != nil {
		s.log.ErrorContext(ctx, "sum a user's open uploads", "err", err)
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(errcode.Internal, "internal error")
	}
	if open+ev.Upload.Size > s.cfg.MaxOpenBytes {
		// Unfinished uploads hold disk until they finish or expire.
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(errcode.QuotaExceeded, fmt.Sprintf(
			"your unfinished uploads already claim %d of %d bytes: finish or terminate one first", open, s.cfg.MaxOpenBytes))
	}
	id := uuid.NewString()
	name := CleanFilename(ev.Upload.MetaData["filename"])
	if _, err := s.store.CreateUpload(ctx, store.Upload{
		ID: id, UserID: user, Size: ev.Upload.Size, Filename: name, ExpiresAt: time.Now().Add(s.cfg.Expiry),
	}); err != nil {
		s.log.ErrorContext(ctx, "record an upload", "err", err)
		return tusd.HTTPResponse{}, tusd.FileInfoChanges{}, tusError(errcode.Internal, "internal error")
	}
	s.log.InfoContext(ctx, "upload created", "upload_id", id, "user_id", user, "bytes", ev.Upload.Size)
	// Only the name is kept: nothing else the client sent is read again.
	return tusd.HTTPResponse{}, tusd.FileInfoChanges{ID: id, MetaData: tusd.MetaData{"filename": name}}, nil
}

// preFinish runs once the last byte is staged, before the client hears
// so: the file is composed under its content key and the upload marked
// finished, so a 204 for the last PATCH means a job can be created from it
// at once. Until then the client's retry (a HEAD showing the full offset)
// finishes it again.
func (s *Service) preFinish(ev tusd.HookEvent) (tusd.HTTPResponse, error) {
	ctx := context.WithoutCancel(ev.Context)
	user, _ := ctx.Value(userKey{}).(string)
	u, err := s.store.GetUpload(ctx, user, ev.Upload.ID)
	if err == nil {
		err = s.finish(ctx, u)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "store a finished upload", "upload_id", ev.Upload.ID, "err", err)
		return tusd.HTTPResponse{}, tusError(errcode.Unavailable, "the upload arrived but could not be stored; retry")
	}
	return tusd.HTTPResponse{}, nil
}

// finish composes a whole upload's file, records its key, then removes
// the staged parts.
func (s *Service) finish(ctx context.Context, u store.Upload) error {
	key, err := s.compose(ctx, u)
	if err != nil {
		return err
	}
	if err := s.store.FinishUpload(ctx, u.ID, key); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "upload finished", "upload_id", u.ID, "key", key)
	s.dropStaged(ctx, u.ID)
	return nil
}

// serveFinished answers for an upload whose bytes have moved to the blob
// store: HEAD says it is whole, DELETE forgets it, anything else is
// refused as tus says for a finished upload.
func (s *Service) serveFinished(w http.ResponseWriter, r *http.Request, u store.Upload) {
	w.Header().Set("Tus-Resumable", "1.0.0")
	w.Header().Set("Cache-Control", "no-store")
	switch r.Method {
	case http.MethodHead:
		w.Header().Set("Upload-Offset", strconv.FormatInt(u.Size, 10))
		w.Header().Set("Upload-Length", strconv.FormatInt(u.Size, 10))
		w.WriteHeader(http.StatusOK)
	case http.MethodDelete:
		if err := s.forget(r.Context(), u); err != nil {
			s.writeStoreError(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	default:
		writeError(w, errcode.Conflict, "the upload is complete; create a job from it with POST /v1/jobs {\"upload_id\": …}")
	}
}

// forget removes a finished upload: its row, and its blob unless a job
// holds the same content.
func (s *Service) forget(ctx context.Context, u store.Upload) error {
	ctx = context.WithoutCancel(ctx)
	ds, err := s.store.ForgetUpload(ctx, u.BlobKey)
	if err != nil {
		return err
	}
	if _, err := retention.DeleteBlobs(ctx, s.store, s.blobs, ds); err != nil {
		// The retention sweeper retries queued deletions.
		s.log.WarnContext(ctx, "delete a forgotten upload's blob", "upload_id", u.ID, "err", err)
	}
	return s.store.DeleteUpload(ctx, u.ID)
}

// dropStaged removes an upload's staged parts. A failure costs space
// only: the sweeper's DeletePrefix of an expired upload comes again.
func (s *Service) dropStaged(ctx context.Context, id string) {
	if err := s.blobs.DeletePrefix(context.WithoutCancel(ctx), stagingPrefix(id)); err != nil {
		s.log.WarnContext(ctx, "remove a staged upload", "upload_id", id, "err", err)
	}
}

// sweepEvery is how often the leader looks for expired uploads.
const sweepEvery = time.Minute

// Run sweeps expired uploads until ctx ends. Only the leader runs it.
func (s *Service) Run(ctx context.Context) {
	for {
		if n, err := s.Sweep(ctx, time.Now()); err != nil {
			s.log.WarnContext(ctx, "sweep expired uploads", "err", err)
		} else if n > 0 {
			s.log.InfoContext(ctx, "expired uploads swept", "uploads", n)
		}
		t := time.NewTimer(sweepEvery + rand.N(sweepEvery/10))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Sweep removes uploads that expired before now: an unfinished one's
// staged bytes, a finished one's blob unless a job holds the same content,
// and their rows. It returns how many it removed.
func (s *Service) Sweep(ctx context.Context, now time.Time) (int, error) {
	n := 0
	for {
		us, err := s.store.ExpiredUploads(ctx, now, 100)
		if err != nil || len(us) == 0 {
			return n, err
		}
		for _, u := range us {
			if u.Finished() {
				err = s.forget(ctx, u)
			} else {
				err = (&stagedUpload{s: s, u: u}).Terminate(ctx)
			}
			if err != nil {
				return n, err
			}
			n++
		}
	}
}

// CleanFilename makes a client's file name fit to show as a job's title:
// the last path element, no control or format characters, at most 255
// bytes of valid UTF-8.
func CleanFilename(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return -1
		}
		return r
	}, name)
	name = strings.TrimSpace(name)
	for len(name) > 255 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if name == "." || name == ".." {
		return ""
	}
	return name
}

func (s *Service) writeStoreError(w http.ResponseWriter, r *http.Request, err error) {
	code := job.CodeOf(err)
	if code == job.CodeInternal {
		s.log.ErrorContext(r.Context(), "upload request", "err", err)
		writeError(w, errcode.Internal, "internal error")
		return
	}
	var je *job.Error
	errors.As(err, &je)
	writeError(w, code, je.Message)
}

// errorBody is the REST error shape, so the edge can pass tus refusals on
// as they are.
func errorBody(code, msg string) []byte {
	b, _ := json.Marshal(map[string]any{"error": map[string]string{"code": code, "message": msg}})
	return b
}

func status(code string) int {
	if st := errcode.Status(code); st != 0 {
		return st
	}
	return http.StatusInternalServerError
}

func writeError(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Tus-Resumable", "1.0.0")
	w.WriteHeader(status(code))
	_, _ = w.Write(errorBody(code, msg))
}

// tusError is a refusal from a tusd callback in the REST error shape.
func tusError(code, msg string) tusd.Error {
	return tusd.Error{ErrorCode: code, Message: msg, HTTPResponse: tusd.HTTPResponse{
		StatusCode: status(code), Body: string(errorBody(code, msg)), Header: tusd.HTTPHeader{"Content-Type": "application/json"},
	}}
}
