// Package api serves core's Connect services: JobService for the edge,
// WorkerService for gpu-nodes, AuthService for the edge's key checks,
// AdminService for operators (through the edge, admins only). Handlers
// translate between the wire and the store; business rules live in job and store.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"connectrpc.com/connect"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/dispatch"
	"github.com/ytcaption/ytcaption/core/internal/nomad"
	"github.com/ytcaption/ytcaption/core/internal/outbound"
	"github.com/ytcaption/ytcaption/core/internal/settings"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/translate"
	"github.com/ytcaption/ytcaption/core/internal/ytdlp"
	"github.com/ytcaption/ytcaption/internal/breaker"
	"github.com/ytcaption/ytcaption/internal/egress"
	"github.com/ytcaption/ytcaption/internal/tracing"
	ytcaptionv1 "github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

// Config holds the settings the handlers need.
type Config struct {
	ServiceToken     string   // the edge's token
	NodeTokens       []string // tokens gpu-nodes may present
	AllowPrivateURLs bool     // accept loopback/private media URLs (dev stack only)
	// AllowMediaFrom are ranges the address policy refuses that media may
	// come from anyway (core's --allow-media-from).
	AllowMediaFrom    []netip.Prefix
	Lease             time.Duration
	HeartbeatInterval time.Duration
	PresignTTL        time.Duration
	PollFallback      time.Duration // AcquireJob re-checks the store this often even without a wake-up
	// WatchPoll is how often WatchJob re-reads the job without a wake-up:
	// only a lost notification needs it, so it can be long.
	WatchPoll time.Duration
	Instance  string // this replica's name, as Ping reports it
	// MaxDuration is the longest media core takes, the floor of drain deadlines.
	MaxDuration time.Duration
	// WorkDir holds ListCaptions' temporary directories (default: the
	// system's temp dir).
	WorkDir string
	// Now is the clock share links are made and expire by (default
	// time.Now; tests stub it).
	Now func() time.Time
}

// Deps are the shared objects the handlers use.
type Deps struct {
	Log      *slog.Logger
	Store    *store.Store // announcing its changes on Bus (store.OnChange(Bus.Announce)): nothing here does
	Blobs    blob.Store
	Bus      *dispatch.Bus   // wake-ups for pollers, in this process and across replicas
	Stopping <-chan struct{} // closed when core begins to shut down
	Metrics  prometheus.Registerer
	// Stages observes how long jobs spend in each stage ("wait" for a GPU,
	// "transcribe"); the download stage observes "download".
	Stages *prometheus.HistogramVec
	// Breakers are the circuit breakers the admin API shows and resets.
	Breakers Breakers
	// Nomad, when set, adds Nomad's node status to the fleet view and drains
	// nodes through it.
	Nomad *nomad.Fleet
	// TracerProvider records a span per call, continuing the caller's trace
	// (nil: none).
	TracerProvider trace.TracerProvider
	// Settings are the deployment's dynamic settings (default rate limits,
	// attempts per stage, intake): the flags', or Consul's KV over them.
	Settings *settings.Source
	// YtDlp lists a video's caption tracks for ListCaptions (nil: the call
	// is unavailable), through YouTube, the download stage's circuit
	// breaker (nil: none), so a blocked YouTube is asked no more for a
	// listing than for a download.
	YtDlp   *ytdlp.Downloader
	YouTube *breaker.Breaker
	// Outbound is the download stage's pool of proxies and cookie files,
	// which the admin API shows (nil: not shown) and tells of cookie file
	// changes.
	Outbound *outbound.Pool
	// Translations runs the translations users ask for (nil: no translator
	// is configured, and asking is refused with translation_unavailable).
	Translations *translate.Worker
}

// metrics are what the handlers count.
type metrics struct {
	staleRefused prometheus.Counter
	succeeded    prometheus.Counter
	stages       *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer, stages *prometheus.HistogramVec) *metrics {
	m := &metrics{
		stages: stages,
		staleRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ytcaption_core_stale_writes_refused_total",
			Help: "Worker calls refused because their lease epoch was stale or lost (fencing at work).",
		}),
		succeeded: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ytcaption_core_jobs_succeeded_total",
			Help: "Jobs that reached succeeded; counted once per job, however often a node retries CompleteJob.",
		}),
	}
	reg.MustRegister(m.staleRefused, m.succeeded)
	return m
}

// compressMinBytes leaves small messages — nearly every worker call —
// uncompressed: gzip costs more CPU than it saves on loopback or a LAN.
const compressMinBytes = 4 << 10

// Register mounts the four services on mux. It returns the admin service,
// which the dashboard calls too, so both make the same audited changes.
//
// Every handler checks the caller's token from the headers before it reads
// a byte of the body, and reads at most MaxMessageBytes of request, inflated;
// UploadJob, which carries a file, has a route of its own with
// MaxUploadMessageBytes.
func Register(mux *http.ServeMux, cfg Config, d Deps) *AdminService {
	small := connect.WithCompressMinBytes(compressMinBytes)
	capped := bodyLimit{max: MaxMessageBytes}
	edgeToken, nodeToken := serviceAuth(cfg.ServiceToken, false), nodeAuth(cfg.NodeTokens)
	mount := func(token authenticator) func(string, http.Handler) {
		return func(path string, h http.Handler) { mux.Handle(path, capped.wrap(h, token)) }
	}
	// Tracing first: a refused call is traced too.
	traced := tracing.Interceptor(d.TracerProvider)
	edge := connect.WithHandlerOptions(connect.WithInterceptors(traced, interceptor{serviceAuth(cfg.ServiceToken, true)}), small)
	jobs := &JobService{
		log: d.Log, store: d.Store, blobs: d.Blobs, bus: d.Bus,
		policy: egress.Policy{AllowPrivate: cfg.AllowPrivateURLs, Allow: cfg.AllowMediaFrom}, settings: d.Settings, watchPoll: cfg.WatchPoll, translations: d.Translations,
		captions: captionLister{ytdlp: d.YtDlp, routes: d.Outbound, youtube: d.YouTube, workDir: cfg.WorkDir, running: make(chan struct{}, maxListings)},
		now:      cfg.Now,
	}
	if jobs.now == nil {
		jobs.now = time.Now
	}
	mount(edgeToken)(ytcaptionv1connect.NewJobServiceHandler(jobs, edge, capped.options()))
	mount(edgeToken)(ytcaptionv1connect.NewBatchServiceHandler(&BatchService{jobs: jobs}, edge, capped.options()))
	// Share links are opened for nobody in particular: the edge's token
	// without a user, as for AuthService.
	mount(edgeToken)(ytcaptionv1connect.NewShareServiceHandler(&ShareService{jobs: jobs},
		connect.WithInterceptors(traced, interceptor{serviceAuth(cfg.ServiceToken, false)}), small, capped.options()))
	// The generated service handler gives every method the same options: the
	// upload's larger limit needs a handler of its own, on its exact path
	// (more specific than the service's prefix, so the mux prefers it).
	ownLimit(mux, MaxUploadMessageBytes, ytcaptionv1connect.JobServiceUploadJobProcedure, jobs.UploadJob, edge, edgeToken)
	// SaveTranscript carries a whole edited transcript: a route of its own
	// too, with MaxTranscriptMessageBytes.
	ownLimit(mux, MaxTranscriptMessageBytes, ytcaptionv1connect.JobServiceSaveTranscriptProcedure, jobs.SaveTranscript, edge, edgeToken)
	breakers := d.Breakers
	if breakers == nil {
		breakers = func() []*breaker.Breaker { return nil }
	}
	admin := &AdminService{log: d.Log, store: d.Store, jobs: jobs, breakers: breakers, nomad: d.Nomad, maxDuration: cfg.MaxDuration, outbound: d.Outbound}
	mount(edgeToken)(ytcaptionv1connect.NewAdminServiceHandler(admin, connect.WithInterceptors(traced, interceptor{adminAuth(cfg.ServiceToken, d.Store)}), small, capped.options()))
	mount(edgeToken)(ytcaptionv1connect.NewAuthServiceHandler(&AuthService{log: d.Log, store: d.Store, settings: d.Settings},
		connect.WithInterceptors(traced, interceptor{serviceAuth(cfg.ServiceToken, false)}), small, capped.options()))
	// A core built without a bus (the dashboard's tests) has no feed to follow:
	// an edge's watch then ends at once and the edge keeps no running job.
	var feed *dispatch.Feed
	if d.Bus != nil {
		feed = d.Bus.Feed
	}
	mount(edgeToken)(ytcaptionv1connect.NewEdgeServiceHandler(&EdgeService{feed: feed, stopping: d.Stopping, jobs: jobs},
		connect.WithInterceptors(traced, interceptor{serviceAuth(cfg.ServiceToken, false)}), small, capped.options()))
	mount(nodeToken)(ytcaptionv1connect.NewWorkerServiceHandler(&WorkerService{
		log: d.Log, store: d.Store, blobs: d.Blobs, bus: d.Bus, metrics: newMetrics(d.Metrics, d.Stages),
		lease: cfg.Lease, heartbeat: cfg.HeartbeatInterval, pollEvery: cfg.PollFallback,
		presignTTL: cfg.PresignTTL, stopping: d.Stopping, instance: cfg.Instance, nodes: newNodeBook(time.Now),
	}, connect.WithInterceptors(traced, interceptor{nodeAuth(cfg.NodeTokens)}), small, capped.options()))
	return admin
}

// ownLimit mounts one JobService method on its exact path with a body limit
// of max bytes instead of MaxMessageBytes (the mux prefers the exact path
// to the service's prefix).
func ownLimit[Req, Res any](mux *http.ServeMux, max int64, procedure string, fn func(context.Context, *connect.Request[Req]) (*connect.Response[Res], error),
	opts connect.HandlerOption, token authenticator) {
	limit := bodyLimit{max: max}
	method := procedure[strings.LastIndex(procedure, "/")+1:]
	mux.Handle(procedure, limit.wrap(connect.NewUnaryHandler(procedure, fn,
		connect.WithSchema(ytcaptionv1.File_ytcaption_v1_job_proto.Services().ByName("JobService").Methods().ByName(protoreflect.Name(method))),
		opts, limit.options()), token))
}
