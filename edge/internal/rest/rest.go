// Package rest is the edge's public REST API on Fiber: routes, the JSON shapes
// of jobs and errors, and per-route metrics. Authentication, rate limits,
// event-stream caps and Idempotency-Key are package gate's, shared with the
// Connect front door (package connectapi); rest adapts them to Fiber (gate.go)
// and says their refusals as its JSON errors (errors.go). It talks to core
// only through the Connect clients it is given.
package rest

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/cors"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/ytcaption/ytcaption/edge/internal/auth"
	"github.com/ytcaption/ytcaption/edge/internal/coreclient"
	"github.com/ytcaption/ytcaption/edge/internal/gate"
	"github.com/ytcaption/ytcaption/edge/internal/jobcache"
	"github.com/ytcaption/ytcaption/internal/clientaddr"
	"github.com/ytcaption/ytcaption/internal/errcode"
	"github.com/ytcaption/ytcaption/internal/jobjson"
	"github.com/ytcaption/ytcaption/internal/tracing"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
)

// Config tunes the API.
type Config struct {
	CoreURL      string
	MaxBodyBytes int           // default 64 KiB
	CallTimeout  time.Duration // per call to core; default 30 s
	// CORSOrigins are the browser origins allowed to call the API
	// ("https://app.example.com", or "*"); empty sends no CORS headers.
	CORSOrigins []string
	// ClientAddrs finds a request's client address (X-Forwarded-For only
	// from trusted proxies), which refused keys are limited by.
	ClientAddrs clientaddr.Resolver
}

// prefixStrings are ps as Fiber's TrustedProxies takes them.
func prefixStrings(ps []netip.Prefix) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.String()
	}
	return out
}

func (cfg Config) withDefaults() Config {
	if cfg.MaxBodyBytes <= 0 {
		cfg.MaxBodyBytes = 64 << 10
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = 30 * time.Second
	}
	return cfg
}

// Time and size bounds of the REST listener. A request's header must fit in
// headerBytes (else 431) and arrive, with its body, within gate.ReadTimeout —
// uploads within gate.UploadReadTimeout; a reply must be written within
// writeTimeout, which event streams push forward with every write.
const (
	headerBytes  = 8 << 10
	writeTimeout = 30 * time.Second
	idleTimeout  = time.Minute
	// uploadBodyBytes is the largest multipart body: the file and the form
	// around it.
	uploadBodyBytes = gate.MaxUploadBytes + 1<<20
)

// Deps are what the API stands on.
type Deps struct {
	Core     coreclient.Clients
	Gate     *gate.Gate           // API keys, limits, Idempotency-Key; shared with the Connect door
	Finished *jobcache.Cache      // jobs answered without core (package jobcache)
	Registry *prometheus.Registry // the API's metrics are registered here
	// TracerProvider traces each request (continuing a client's traceparent)
	// and, through Core's clients, hands the trace to core; nil: none.
	TracerProvider trace.TracerProvider
	// Sessions lets the web app's session cookie stand in for an API key;
	// nil: only Authorization headers.
	Sessions Sessions
}

// openAPI describes the REST API; a test keeps it and the routes in step.
//
//go:embed openapi.json
var openAPI []byte

type server struct {
	Deps
	log     *slog.Logger
	cfg     Config
	metrics *metrics
	tracer  trace.Tracer // from TracerProvider, made once: measure runs on every request
	blobs   *http.Client // fetches the audio core presigns (relayAudio)
}

type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// New returns the Fiber app serving the REST API.
func New(log *slog.Logger, cfg Config, d Deps) *fiber.App {
	reg := d.Registry
	cfg = cfg.withDefaults()
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ytcaption_edge_http_requests_total", Help: "REST requests by route pattern, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "ytcaption_edge_http_request_duration_seconds", Help: "REST request latency by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	s := &server{Deps: d, log: log, cfg: cfg, metrics: m, tracer: tracing.Tracer(d.TracerProvider), blobs: newBlobClient()}

	app := fiber.New(fiber.Config{
		DisableStartupMessage: true,
		// The most any request may send; bodyLimits holds all but uploads to
		// MaxBodyBytes as soon as the header is read, before the body is.
		BodyLimit:      uploadBodyBytes,
		ErrorHandler:   errorHandler(log),
		ReadTimeout:    gate.ReadTimeout,
		WriteTimeout:   writeTimeout,
		IdleTimeout:    idleTimeout,
		ReadBufferSize: headerBytes,
		AppName:        "ytcaption-edge",
		// Resumable uploads relay their bodies as they arrive; every other
		// route's body is bounded and read whole by boundBody (uploads.go).
		StreamRequestBody:            true,
		DisablePreParseMultipartForm: true,
		// Fiber reads X-Forwarded-Host and X-Forwarded-Proto (c.Hostname,
		// c.Protocol, c.BaseURL: an upload's Location, the web app's
		// same-origin check and Secure cookie) from any peer unless told
		// whom to trust: only the proxies X-Forwarded-For is read from,
		// none by default.
		EnableTrustedProxyCheck: true,
		TrustedProxies:          prefixStrings(cfg.ClientAddrs.Trusted()),
	})
	app.Server().HeaderReceived = s.headerReceived
	app.Use(s.measure, s.boundBody, identityOnly)
	if len(cfg.CORSOrigins) > 0 {
		app.Use(cors.New(cors.Config{
			AllowOrigins: strings.Join(cfg.CORSOrigins, ","),
			AllowMethods: "GET,HEAD,POST,PUT,PATCH,DELETE,OPTIONS",
			AllowHeaders: "Authorization,Content-Type,Idempotency-Key,Last-Event-ID,X-Request-Id," +
				"Tus-Resumable,Upload-Length,Upload-Offset,Upload-Metadata,Upload-Defer-Length,Upload-Concat",
			ExposeHeaders: "RateLimit,RateLimit-Policy,Retry-After,Idempotent-Replayed,X-Request-Id," +
				"Location,Tus-Resumable,Tus-Version,Tus-Extension,Tus-Max-Size,Upload-Offset,Upload-Length,Upload-Expires",
			MaxAge: 600,
		}))
	}
	app.Get("/health/live", func(c *fiber.Ctx) error { return c.JSON(fiber.Map{"status": "ok"}) })
	app.Get("/health/ready", s.ready)
	app.Get("/openapi.json", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
		return c.Send(openAPI)
	})

	app.Options(tusPath, s.tusOptions)
	app.Options(tusPath+"/:id", s.tusOptions)
	s.sharedRoutes(app) // before the group: no API key
	v1 := app.Group("/v1", s.authenticate, s.limit)
	v1.Post("/jobs", s.createJob)
	v1.Get("/jobs", s.listJobs)
	v1.Get("/jobs/:id", s.getJob)
	v1.Delete("/jobs/:id", s.cancelJob)
	v1.Patch("/jobs/:id", s.patchJob)
	v1.Get("/jobs/:id/transcript", s.transcript)
	v1.Put("/jobs/:id/transcript", s.saveTranscript)
	v1.Get("/jobs/:id/revisions", s.listRevisions)
	v1.Get("/jobs/:id/audio", s.audio)
	v1.Post("/jobs/:id/translations", s.createTranslation)
	v1.Get("/jobs/:id/translations", s.listTranslations)
	v1.Get("/jobs/:id/events", s.events)
	v1.Post("/audio/transcriptions", s.transcriptions)
	v1.Post("/audio/translations", s.transcriptions) // the same, with the task translate (openAITask)
	v1.Post("/uploads", s.tus)
	v1.Head("/uploads/:id", s.tus)
	v1.Patch("/uploads/:id", s.tus)
	v1.Delete("/uploads/:id", s.tus)
	v1.Get("/account", protoCall(s, s.Core.Jobs.GetAccount, ""))
	v1.Get("/media/captions", s.listCaptions)
	v1.Get("/models", s.listModels)
	s.batchRoutes(v1)
	s.shareRoutes(v1)
	s.adminRoutes(v1)
	return app
}

// measure gives each request an id (the client's X-Request-Id if sane, else a
// new one), echoes it, passes it to core, counts the request by its route
// pattern — never the raw path — and writes one structured access-log line.
func (s *server) measure(c *fiber.Ctx) error {
	start := time.Now()
	id := gate.RequestID(strings.Clone(c.Get(gate.HeaderRequestID)))
	c.Set(gate.HeaderRequestID, id)
	c.Locals(requestIDKey{}, id)
	addr := s.clientAddr(c)
	c.Locals(clientAddrKey{}, addr)
	h := http.Header{}
	for _, k := range []string{"traceparent", "tracestate"} {
		if v := c.Get(k); v != "" {
			h.Set(k, strings.Clone(v))
		}
	}
	ctx, span := s.tracer.Start(tracing.Extract(c.UserContext(), h), "edge "+c.Method(),
		trace.WithSpanKind(trace.SpanKindServer), trace.WithAttributes(attribute.String("http.request.method", strings.Clone(c.Method())),
			attribute.String("request.id", id)))
	defer span.End()
	c.SetUserContext(ctx)
	err := c.Next()
	if err != nil {
		// Write the error reply now so the status below is the real one.
		if herr := c.App().ErrorHandler(c, err); herr != nil {
			return herr
		}
	}
	route := c.Route().Path
	if c.Response().StatusCode() == http.StatusNotFound && (route == "/" || route == "") {
		route = "unmatched"
	}
	method := strings.Clone(c.Method())
	took := time.Since(start)
	status := c.Response().StatusCode()
	s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	s.metrics.duration.WithLabelValues(route, method).Observe(took.Seconds())
	span.SetName(method + " " + route)
	span.SetAttributes(attribute.String("http.route", route), attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	attrs := []any{"request_id", id, "method", method, "route", route, "status", status, "duration_ms", took.Milliseconds(),
		"remote", addr.String()}
	if p, ok := c.Locals(principalKey{}).(auth.Principal); ok {
		attrs = append(attrs, "user_id", p.UserID)
	}
	s.log.InfoContext(ctx, "request", attrs...)
	return nil
}

type requestIDKey struct{}

type clientAddrKey struct{}

// clientAddr is the request's client: the TCP peer, or the address a trusted
// proxy forwarded for.
func (s *server) clientAddr(c *fiber.Ctx) netip.Addr {
	var peer netip.Addr
	if a, ok := c.Context().RemoteAddr().(*net.TCPAddr); ok {
		peer = a.AddrPort().Addr()
	}
	var forwarded []string
	c.Request().Header.VisitAll(func(k, v []byte) {
		if bytes.EqualFold(k, []byte(fiber.HeaderXForwardedFor)) {
			forwarded = append(forwarded, string(v))
		}
	})
	return s.cfg.ClientAddrs.Resolve(peer, forwarded)
}

// bodyLimits runs once a request's header is read, before its body is: every
// route but the upload takes at most MaxBodyBytes (413 otherwise, the rest
// of the body never read) — an edited transcript up to transcriptBodyBytes —
// and the upload gets time to arrive. A path that
// merely looks like the upload's gets the upload's limit, never more.
func (s *server) bodyLimits(h *fasthttp.RequestHeader) fasthttp.RequestConfig {
	if isUpload(h) {
		return fasthttp.RequestConfig{ReadTimeout: gate.UploadReadTimeout} // the server's BodyLimit
	}
	if isTranscriptPut(h) { // a whole edited transcript
		return fasthttp.RequestConfig{MaxRequestBodySize: max(s.cfg.MaxBodyBytes, transcriptBodyBytes)}
	}
	return fasthttp.RequestConfig{MaxRequestBodySize: s.cfg.MaxBodyBytes}
}

// isUpload reports whether the request is POST /v1/audio/transcriptions (or
// /v1/audio/translations) as
// Fiber routes it: case-insensitive, with or without a trailing slash.
func isUpload(h *fasthttp.RequestHeader) bool {
	if !h.IsPost() {
		return false
	}
	u := fasthttp.AcquireURI()
	defer fasthttp.ReleaseURI(u)
	if err := u.Parse(nil, h.RequestURI()); err != nil {
		return false
	}
	path := bytes.TrimSuffix(u.PathOriginal(), []byte("/"))
	return bytes.EqualFold(path, []byte(uploadPath)) || bytes.EqualFold(path, []byte(translationsPath))
}

const (
	uploadPath       = "/v1/audio/transcriptions"
	translationsPath = "/v1/audio/translations" // OpenAI's speech to English text: an upload too
)

// identityOnly refuses, with 415, a request whose body is encoded (gzip, br,
// deflate, zstd, …) before anything reads it. Fiber's c.Body() and
// fasthttp's multipart reader inflate such a body whole, with no cap: a
// megabyte on the wire becomes gigabytes in memory. Refusing is O(1) where a
// capped inflater would still burn CPU up to its cap, and no client needs it:
// JSON bodies are at most 64 KiB and audio does not compress.
func identityOnly(c *fiber.Ctx) error {
	encoded := false
	c.Request().Header.VisitAll(func(k, v []byte) {
		if !bytes.EqualFold(k, []byte(fiber.HeaderContentEncoding)) {
			return
		}
		for _, tok := range bytes.Split(v, []byte(",")) {
			if tok = bytes.TrimSpace(tok); len(tok) > 0 && !bytes.EqualFold(tok, []byte("identity")) {
				encoded = true
			}
		}
	})
	if encoded {
		c.Set(fiber.HeaderAcceptEncoding, "identity") // RFC 7694: what we take instead
		return codedError(errcode.UnsupportedEncoding,
			"compressed request bodies are not accepted: send the body without Content-Encoding")
	}
	return c.Next()
}

func (s *server) ready(c *fiber.Ctx) error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(s.cfg.CoreURL, "/")+"/health/ready", nil)
	if err != nil {
		return err
	}
	resp, err := s.Core.HTTP.Do(req)
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return c.JSON(fiber.Map{"status": "ok"})
		}
	}
	return codedError(errcode.Unavailable, "core is not ready")
}

// call prepares a Connect request to core on behalf of the caller.
func call[T any](s *server, c *fiber.Ctx, msg *T) (context.Context, context.CancelFunc, *connect.Request[T]) {
	ctx, cancel := context.WithTimeout(c.UserContext(), s.cfg.CallTimeout)
	return ctx, cancel, coreRequest(c, msg)
}

type createBody struct {
	URL      string `json:"url"`
	Language string `json:"language"`
	Engine   string `json:"engine"`
	Model    string `json:"model"`
	Source   string `json:"source"`
	Task     string `json:"task"`
	Prompt   string `json:"prompt"`
	Webhook  string `json:"webhook_url"`
	UploadID string `json:"upload_id"`
	// Languages to translate the transcript into once it is done.
	TranslateTo []string `json:"translate_to"`

	// Speaker labels, with bounds on how many speakers (0: the engine decides).
	Speakers    bool  `json:"speakers"`
	MinSpeakers int32 `json:"min_speakers"`
	MaxSpeakers int32 `json:"max_speakers"`

	// Terms to spell as given, and the hallucination guards (each on
	// unless set false).
	Vocabulary []string    `json:"vocabulary"`
	Guards     *guardsBody `json:"guards"`
}

type guardsBody struct {
	Silence    *bool `json:"silence"`
	Repetition *bool `json:"repetition"`
}

// decodeStrict reads exactly one JSON object with only known fields.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var syntax *json.SyntaxError
		var typ *json.UnmarshalTypeError
		switch {
		case errors.As(err, &syntax), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return codedError(errcode.InvalidJSON, "the body is not a JSON object")
		case errors.As(err, &typ):
			return codedError(errcode.InvalidArgument, fmt.Sprintf("field %q must be a %s", typ.Field, typ.Type))
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return codedError(errcode.InvalidArgument, strings.TrimPrefix(err.Error(), "json: "))
		}
		return codedError(errcode.InvalidJSON, "the body is not valid JSON")
	}
	if dec.More() {
		return codedError(errcode.InvalidJSON, "the body holds more than one JSON value")
	}
	return nil
}

// decodeBody decodes a JSON body of at most MaxBodyBytes, as sent (never
// inflated), into v, strictly (decodeStrict).
func (s *server) decodeBody(c *fiber.Ctx, v any) error {
	return s.decodeBodyUpTo(c, s.cfg.MaxBodyBytes, v)
}

// decodeBodyUpTo is decodeBody with a limit of its own (a route's that
// bodyLimits gives more than MaxBodyBytes).
func (s *server) decodeBodyUpTo(c *fiber.Ctx, limit int, v any) error {
	body := c.Request().Body()
	if len(body) > limit {
		return codedError(errcode.RequestTooLarge, fmt.Sprintf("the body is larger than %d bytes", limit))
	}
	return decodeStrict(body, v)
}

func (s *server) createJob(c *fiber.Ctx) error {
	var b createBody
	if err := s.decodeBody(c, &b); err != nil {
		return err
	}
	if strings.TrimSpace(b.URL) == "" && b.UploadID == "" {
		return codedError(errcode.InvalidURL, "\"url\" (or \"upload_id\" of a finished upload) is required")
	}
	msg := &ytcaptionv1.CreateJobRequest{Url: b.URL, UploadId: b.UploadID, Language: b.Language, Engine: b.Engine, Model: b.Model, Source: b.Source,
		Task: b.Task, Prompt: b.Prompt, WebhookUrl: b.Webhook, IdempotencyKey: strings.Clone(c.Get("Idempotency-Key"))}
	msg.TranslateTo = b.TranslateTo
	msg.Speakers, msg.MinSpeakers, msg.MaxSpeakers = b.Speakers, b.MinSpeakers, b.MaxSpeakers
	msg.Vocabulary = b.Vocabulary
	if b.Guards != nil {
		msg.SilenceGuard, msg.RepetitionGuard = b.Guards.Silence, b.Guards.Repetition
	}
	out, err := s.Gate.Create(c.UserContext(), principal(c).UserID, gate.JSON, msg,
		func(ctx context.Context, msg *ytcaptionv1.CreateJobRequest) (*connect.Response[ytcaptionv1.CreateJobResponse], error) {
			ctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
			defer cancel()
			return s.Core.Jobs.CreateJob(ctx, coreRequest(c, msg))
		})
	if err != nil {
		return err
	}
	if out.Replayed {
		c.Set("Idempotent-Replayed", "true")
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Status(out.Status).Send(out.Body)
}

func (s *server) getJob(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	body, err := s.Finished.ReadEncoded(principal(c).UserID, id, func() (*ytcaptionv1.Job, error) {
		// Only a read the cache cannot answer pays for a call to core.
		ctx, cancel, req := call(s, c, &ytcaptionv1.GetJobRequest{Id: id})
		defer cancel()
		resp, err := s.Core.Jobs.GetJob(ctx, req)
		if err != nil {
			return nil, err
		}
		return resp.Msg.GetJob(), nil
	}, func(j *ytcaptionv1.Job) ([]byte, error) { return json.Marshal(jobjson.From(j)) })
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, fiber.MIMEApplicationJSON)
	return c.Send(body)
}

// limitParam reads ?limit= between 1 and most, def when absent.
func limitParam(c *fiber.Ctx, def, most int) (int, error) {
	v := c.Query("limit")
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > most {
		return 0, codedError(errcode.InvalidArgument, fmt.Sprintf("limit must be a whole number from 1 to %d", most))
	}
	return n, nil
}

func (s *server) listJobs(c *fiber.Ctx) error {
	limit, err := limitParam(c, 20, 100)
	if err != nil {
		return err
	}
	ctx, cancel, req := call(s, c, &ytcaptionv1.ListJobsRequest{PageSize: int32(limit), PageToken: strings.Clone(c.Query("cursor"))})
	defer cancel()
	resp, err := s.Core.Jobs.ListJobs(ctx, req)
	if err != nil {
		return err
	}
	return c.JSON(jobPage(resp.Msg.GetJobs(), resp.Msg.GetNextPageToken()))
}

// jobPage is a page of jobs as REST shows it: a user's, or a batch's.
func jobPage(jobs []*ytcaptionv1.Job, next string) any {
	out := struct {
		Jobs       []jobjson.Job `json:"jobs"`
		NextCursor string        `json:"next_cursor,omitempty"`
	}{Jobs: make([]jobjson.Job, 0, len(jobs)), NextCursor: next}
	for _, j := range jobs {
		out.Jobs = append(out.Jobs, jobjson.From(j))
	}
	return out
}

func (s *server) cancelJob(c *fiber.Ctx) error {
	id := strings.Clone(c.Params("id"))
	switch c.Query("purge") {
	case "", "false":
	case "true":
		ctx, cancel, req := call(s, c, &ytcaptionv1.DeleteJobRequest{Id: id})
		defer cancel()
		defer s.Finished.Forget(id)
		if _, err := s.Core.Jobs.DeleteJob(ctx, req); err != nil {
			return err
		}
		return c.JSON(fiber.Map{"id": id, "purged": true})
	default:
		return codedError(errcode.InvalidArgument, "purge must be true or false")
	}
	ctx, cancel, req := call(s, c, &ytcaptionv1.CancelJobRequest{Id: id})
	defer cancel()
	defer s.Finished.Forget(id) // before the answer: a read after it must see the cancel
	resp, err := s.Core.Jobs.CancelJob(ctx, req)
	if err != nil {
		return err
	}
	return c.JSON(jobjson.From(resp.Msg.GetJob()))
}

// listCaptionsTimeout bounds GET /v1/media/captions: core gives yt-dlp 90 s
// to ask the site, and its typed error should arrive before the edge gives up.
const listCaptionsTimeout = 100 * time.Second

// captionTrack and captionListing are the JSON of GET /v1/media/captions.
type captionTrack struct {
	Language     string `json:"language"`
	Name         string `json:"name,omitempty"`
	Automatic    bool   `json:"automatic"`
	Translatable bool   `json:"translatable"`
	Original     bool   `json:"original"`
}

type captionListing struct {
	URL      string         `json:"url"`
	Site     string         `json:"site,omitempty"`
	ID       string         `json:"id,omitempty"`
	Title    string         `json:"title,omitempty"`
	Language string         `json:"language,omitempty"`
	Tracks   []captionTrack `json:"tracks"`
	Media    *jobjson.Media `json:"media,omitempty"`
}

// listCaptions lists the caption tracks a video has, without a job: core
// asks the site each time, so it answers in seconds, not milliseconds.
func (s *server) listCaptions(c *fiber.Ctx) error {
	url := strings.Clone(c.Query("url"))
	if strings.TrimSpace(url) == "" {
		return codedError(errcode.InvalidURL, "the url query parameter is required: GET /v1/media/captions?url=…")
	}
	ctx, cancel := context.WithTimeout(c.UserContext(), max(s.cfg.CallTimeout, listCaptionsTimeout))
	defer cancel()
	resp, err := s.Core.Jobs.ListCaptions(ctx, coreRequest(c, &ytcaptionv1.ListCaptionsRequest{Url: url}))
	if err != nil {
		return err
	}
	m := resp.Msg
	out := captionListing{URL: m.GetUrl(), Site: m.GetSite(), ID: m.GetId(), Title: m.GetTitle(), Language: m.GetLanguage(),
		Tracks: []captionTrack{}, Media: jobjson.MediaFrom(m.GetMedia())}
	for _, t := range m.GetTracks() {
		out.Tracks = append(out.Tracks, captionTrack{Language: t.GetLanguage(), Name: t.GetName(), Automatic: t.GetAutomatic(),
			Translatable: t.GetTranslatable(), Original: t.GetOriginal()})
	}
	return c.JSON(out)
}

var formats = map[string]ytcaptionv1.TranscriptFormat{
	"srt":  ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_SRT,
	"vtt":  ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_VTT,
	"txt":  ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_TXT,
	"json": ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_JSON,
	"tsv":  ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_TSV,
	"ass":  ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_ASS,
	"ttml": ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_TTML,
	"sbv":  ytcaptionv1.TranscriptFormat_TRANSCRIPT_FORMAT_SBV,
}

// transcriptRequest reads a transcript's format (also the file extension,
// which it returns) and render options from the query: format,
// max_line_chars, max_lines and karaoke. Core checks their values; here
// they only have to parse.
func transcriptRequest(c *fiber.Ctx, id string) (*ytcaptionv1.GetTranscriptRequest, string, error) {
	name := strings.ToLower(c.Query("format", "srt"))
	f, ok := formats[name]
	if !ok {
		return nil, "", codedError(errcode.InvalidArgument, fmt.Sprintf("unknown format %q: use srt, vtt, ass, ttml, sbv, txt, json or tsv", name))
	}
	msg := &ytcaptionv1.GetTranscriptRequest{Id: id, Format: f}
	for param, dst := range map[string]*int32{"max_line_chars": &msg.MaxLineChars, "max_lines": &msg.MaxLines} {
		if v := c.Query(param); v != "" {
			n, err := strconv.ParseInt(v, 10, 32)
			if err != nil {
				return nil, "", codedError(errcode.InvalidArgument, fmt.Sprintf("%s must be a whole number, got %q", param, v))
			}
			*dst = int32(n)
		}
	}
	if v := c.Query("karaoke"); v != "" {
		k, err := strconv.ParseBool(v)
		if err != nil {
			return nil, "", codedError(errcode.InvalidArgument, fmt.Sprintf("karaoke must be true or false, got %q", v))
		}
		msg.Karaoke = k
	}
	return msg, name, nil
}

func (s *server) transcript(c *fiber.Ctx) error {
	msg, _, err := transcriptRequest(c, strings.Clone(c.Params("id")))
	if err != nil {
		return err
	}
	msg.Language = strings.Clone(c.Query("lang")) // a translation's (core checks it)
	if msg.Revision, err = revisionParam(c); err != nil {
		return err
	}
	ctx, cancel, req := call(s, c, msg)
	defer cancel()
	resp, err := s.Core.Jobs.GetTranscript(ctx, req)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentType, resp.Msg.GetContentType())
	return c.Send(resp.Msg.GetContent())
}
