// Package uploads is core's tus 1.0 endpoint (resumable uploads of any size,
// through the tusd library) at /v1/uploads/. Only the edge calls it: every
// request carries the service token and the id of the user the edge
// authenticated. An upload is recorded in the store before its first byte is
// accepted — its declared size must be within the deployment's maximum and
// the user within their quota — and is seen only by its owner. Bytes land in
// tusd's filestore under the data directory; when the last one arrives the
// file is hashed and put into the blob store under its content key
// (uploads/ab/<sha256>), exactly where UploadJob puts a small file, so a job
// created from it (CreateJob with upload_id) is an ordinary upload job for
// the fetch stage. Unfinished uploads, and finished ones no job took, expire
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
	"path/filepath"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/tus/tusd/v2/pkg/filelocker"
	"github.com/tus/tusd/v2/pkg/filestore"
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
	// Dir holds the bytes of unfinished uploads (tusd's filestore).
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
	files  filestore.FileStore
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
	s := &Service{log: log, cfg: cfg, store: st, blobs: blobs, files: filestore.New(cfg.Dir)}
	composer := tusd.NewStoreComposer()
	s.files.UseIn(composer)
	// A file lock, not a memory one: two requests for one upload (a client
	// resuming while its dropped request still drains) must not interleave.
	filelocker.New(cfg.Dir).UseIn(composer)
	h, err := tusd.NewHandler(tusd.Config{
		StoreComposer:        composer,
		BasePath:             Path + "/",
		MaxSize:              cfg.MaxSize,
		DisableDownload:      true, // the bytes go to a job, never back out
		DisableConcatenation: true, // parts would dodge the size check at creation
		Cors:                 &tusd.CorsConfig{Disable: true},
		Logger:               tuslog.New(tuslog.NewTextHandler(io.Discard, nil)), // our own lines say what happened
		// tusd keeps a goroutine per request for this long after it ends,
		// giving a store time to save the bytes of a dropped PATCH. The
		// filestore writes as it reads, and our callbacks run without the
		// request's cancellation, so nothing needs the default 10 s.
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
		if !u.Finished() && r.Method == http.MethodHead && s.whole(u) {
			// Every byte arrived but storing the file failed (the client
			// heard a 503): finish it now, or the client, seeing the full
			// offset, would think it done while no job can use it.
			if err := s.finish(r.Context(), u.ID); err != nil {
				s.log.ErrorContext(r.Context(), "store a finished upload", "upload_id", u.ID, "err", err)
				writeError(w, errcode.Unavailable, "the upload arrived but could not be stored; retry")
				return
			}
			s.dropStaged(r.Context(), u.ID)
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
		rec := &recorder{ResponseWriter: w}
		s.routed.ServeHTTP(rec, r)
		s.after(r, u, rec)
		return
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

// preFinish runs once the last byte is written, before the client hears
// so: the file goes into the blob store under its content key and the
// upload is marked finished, so a 204 for the last PATCH means a job can
// be created from it at once. Until then the client's retry (a HEAD
// showing the full offset) finishes it again.
func (s *Service) preFinish(ev tusd.HookEvent) (tusd.HTTPResponse, error) {
	ctx := context.WithoutCancel(ev.Context)
	if err := s.finish(ctx, ev.Upload.ID); err != nil {
		s.log.ErrorContext(ctx, "store a finished upload", "upload_id", ev.Upload.ID, "err", err)
		return tusd.HTTPResponse{}, tusError(errcode.Unavailable, "the upload arrived but could not be stored; retry")
	}
	return tusd.HTTPResponse{}, nil
}

// finish hashes the whole file, stores it under its content key and
// records the key; then the staged copy is removed.
func (s *Service) finish(ctx context.Context, id string) error {
	path := filepath.Join(s.cfg.Dir, id)
	sum, err := blob.HashFile(path)
	if err != nil {
		return fmt.Errorf("hash upload %s: %w", id, err)
	}
	key := blob.ContentKey("uploads", sum, "")
	if err := s.blobs.PutFile(ctx, key, path, "application/octet-stream"); err != nil {
		return err
	}
	if err := s.store.FinishUpload(ctx, id, key); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "upload finished", "upload_id", id, "key", key)
	return nil
}

// whole says whether every byte of an unfinished upload is staged.
func (s *Service) whole(u store.Upload) bool {
	st, err := os.Stat(filepath.Join(s.cfg.Dir, u.ID))
	return err == nil && st.Size() == u.Size
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

// after records what a request to tusd changed: the bytes received after a
// PATCH, the row's end after a DELETE.
func (s *Service) after(r *http.Request, u store.Upload, rec *recorder) {
	ctx := context.WithoutCancel(r.Context())
	switch {
	case r.Method == http.MethodPatch && rec.status == http.StatusNoContent:
		n, err := strconv.ParseInt(rec.Header().Get("Upload-Offset"), 10, 64)
		switch {
		case err != nil:
		case n == u.Size:
			// preFinish put the bytes in the blob store, and tusd has let
			// go of the upload: the staged copy can go.
			s.dropStaged(ctx, u.ID)
		default:
			if err := s.store.SetUploadReceived(ctx, u.ID, n); err != nil {
				s.log.WarnContext(ctx, "record an upload's offset", "upload_id", u.ID, "err", err)
			}
		}
	case r.Method == http.MethodDelete && rec.status == http.StatusNoContent:
		if err := s.store.DeleteUpload(ctx, u.ID); err != nil {
			s.log.WarnContext(ctx, "forget a terminated upload", "upload_id", u.ID, "err", err)
		}
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

// dropStaged removes an upload's files from the filestore.
func (s *Service) dropStaged(ctx context.Context, id string) {
	for _, p := range []string{filepath.Join(s.cfg.Dir, id), filepath.Join(s.cfg.Dir, id+".info")} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			s.log.WarnContext(ctx, "remove a staged upload", "upload_id", id, "err", err)
		}
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
				s.dropStaged(ctx, u.ID)
				err = s.store.DeleteUpload(ctx, u.ID)
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

// recorder keeps the status of tusd's reply; Unwrap lets tusd move the
// connection's deadlines through http.ResponseController.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(p []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(p)
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

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
