package api

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"connectrpc.com/connect"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/blob"
	"github.com/ytcaption/ytcaption/core/internal/dispatch"
	"github.com/ytcaption/ytcaption/core/internal/migrations"
	"github.com/ytcaption/ytcaption/core/internal/settings"
	"github.com/ytcaption/ytcaption/core/internal/sqldb"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/svcauth"
	"github.com/ytcaption/ytcaption/proto/gen/ytcaption/v1/ytcaptionv1connect"
)

const (
	testServiceToken = "test-service-token"
	testNodeToken    = "test-node-token"
)

// testAPI is core's Connect services over loopback HTTP on an SQLite store
// and a blob directory, each the test's own.
type testAPI struct {
	URL    string
	db     sqldb.DB
	store  *store.Store
	blobs  *blob.Dir
	bus    *dispatch.Bus
	user   store.User
	admin  *AdminService
	jobs   ytcaptionv1connect.JobServiceClient    // as the edge, for user
	worker ytcaptionv1connect.WorkerServiceClient // as a gpu-node
}

func newTestAPI(t *testing.T, configure func(*Config)) *testAPI {
	t.Helper()
	return newTestAPIWith(t, configure, nil)
}

// newTestAPIWith is newTestAPI whose Deps deps may change (nil: none).
func newTestAPIWith(t *testing.T, configure func(*Config), deps func(*Deps)) *testAPI {
	t.Helper()
	dir := t.TempDir()
	db, err := sqldb.OpenSQLite(filepath.Join(dir, "ytcaption.db"))
	require.NoError(t, err)
	t.Cleanup(db.Close)
	_, err = migrations.Migrate(context.Background(), db)
	require.NoError(t, err)
	blobs, err := blob.OpenDir(filepath.Join(dir, "blobs"), "")
	require.NoError(t, err)
	return serveTestAPIWith(t, db, blobs, configure, deps)
}

// serveTestAPI serves the API on db (migrated) and blobs; its bus reaches
// other replicas on the same database by the database's notifications.
func serveTestAPI(t *testing.T, db sqldb.DB, blobs *blob.Dir, configure func(*Config)) *testAPI {
	t.Helper()
	return serveTestAPIWith(t, db, blobs, configure, nil)
}

func serveTestAPIWith(t *testing.T, db sqldb.DB, blobs *blob.Dir, configure func(*Config), deps func(*Deps)) *testAPI {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	bus := dispatch.NewBus(log, db, "test-"+uuid.NewString())
	st := store.New(db, store.OnChange(bus.Announce))
	u, err := st.EnsureUser(ctx, "alice", store.RoleUser)
	require.NoError(t, err)

	listening := make(chan struct{})
	go func() { defer close(listening); bus.Listen(ctx) }()
	stopping := make(chan struct{})
	cfg := Config{
		ServiceToken: testServiceToken, NodeTokens: []string{testNodeToken}, AllowPrivateURLs: true, Instance: "test",
		Lease: time.Minute, HeartbeatInterval: 50 * time.Millisecond, PresignTTL: time.Minute,
		PollFallback: time.Second, WatchPoll: time.Second, MaxDuration: time.Hour,
	}
	if configure != nil {
		configure(&cfg)
	}
	mux := http.NewServeMux()
	d := Deps{Log: log, Store: st, Blobs: blobs, Bus: bus, Stopping: stopping, Metrics: prometheus.NewRegistry(),
		Settings: settings.Static(settings.Settings{CreateRate: 10, CreateBurst: 20, ReadRate: 100, ReadBurst: 200, MaxAttempts: 3})}
	if deps != nil {
		deps(&d)
	}
	admin := Register(mux, cfg, d)
	srv := httptest.NewServer(mux)
	t.Cleanup(func() { close(stopping); srv.Close(); cancel(); <-listening })
	blobs.DefaultBaseURL(srv.URL)

	return &testAPI{
		URL: srv.URL, db: db, store: st, blobs: blobs, bus: bus, user: u, admin: admin,
		jobs:   ytcaptionv1connect.NewJobServiceClient(asUser(testServiceToken, u.ID), srv.URL),
		worker: ytcaptionv1connect.NewWorkerServiceClient(asUser(testNodeToken, ""), srv.URL),
	}
}

// rootAdmin makes the admin user "root" and returns the admin API as root.
func (a *testAPI) rootAdmin(t *testing.T) ytcaptionv1connect.AdminServiceClient {
	t.Helper()
	root, err := a.store.EnsureUser(context.Background(), "root", store.RoleAdmin)
	require.NoError(t, err)
	return ytcaptionv1connect.NewAdminServiceClient(asUser(testServiceToken, root.ID), a.URL)
}

// asUser is an HTTP client presenting token, and a user id when not "".
func asUser(token, user string) *http.Client {
	return &http.Client{Transport: &svcauth.Transport{Token: token, Base: headerTransport{svcauth.UserHeader: user}}}
}

type headerTransport map[string]string

func (h headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, v := range h {
		if v != "" {
			r.Header.Set(k, v)
		}
	}
	return http.DefaultTransport.RoundTrip(r)
}

// jobsFor is the JobService as the edge calls it for user.
func (a *testAPI) jobsFor(user string) ytcaptionv1connect.JobServiceClient {
	return ytcaptionv1connect.NewJobServiceClient(asUser(testServiceToken, user), a.URL)
}

// detailOf is a Connect error's ytcaption error code.
func detailOf(t *testing.T, err error) string {
	t.Helper()
	require.Error(t, err)
	var ce *connect.Error
	require.ErrorAs(t, err, &ce)
	return detail(t, err)
}
