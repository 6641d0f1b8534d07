package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/notify"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/core/internal/storetest"
)

type delivery struct {
	Headers map[string]string `json:"headers"`
	Body    string            `json:"body"`
}

// receiver answers each webhook with the next status of codes (the last
// repeats) and keeps what it got.
type receiver struct {
	mu    sync.Mutex
	codes []int
	got   []delivery
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	h := map[string]string{}
	for _, k := range []string{"webhook-id", "webhook-timestamp", "webhook-signature"} {
		h[k] = req.Header.Get(k)
	}
	r.got = append(r.got, delivery{Headers: h, Body: string(b)})
	code := r.codes[min(len(r.got), len(r.codes))-1]
	w.WriteHeader(code)
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// eachDriver runs test on PostgreSQL and on SQLite (the single box's
// database), in parallel subtests: the outbox, its claims and the delivery
// log are the store's SQL, which each driver runs its own way.
func eachDriver(t *testing.T, test func(t *testing.T, open storetest.Maker)) {
	t.Parallel()
	storetest.ForEachDriver(t, func(t *testing.T, open storetest.Maker) {
		t.Parallel()
		test(t, open)
	})
}

// setup returns a store with user alice and a notifier running on it.
func setup(t *testing.T, open storetest.Maker, cfg notify.Config) (*store.Store, store.Account) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	env := open(t)
	s := env.Store
	a, err := s.GetAccount(ctx, env.User.ID)
	require.NoError(t, err)
	cfg.AllowPrivate, cfg.Poll = true, 10*time.Millisecond
	n := notify.New(slog.New(slog.DiscardHandler), s, cfg, func(j job.Job) ([]byte, error) {
		return json.Marshal(map[string]any{"id": j.ID, "status": j.Status})
	}, prometheus.NewRegistry())
	done := make(chan struct{})
	go func() { n.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return s, a
}

// endJob creates a job for the user and cancels it: the quickest way to a
// finished job, which fills the outbox.
func endJob(t *testing.T, s *store.Store, userID string) job.Job {
	t.Helper()
	ctx := context.Background()
	j, err := s.CreateJob(ctx, store.NewJob{UserID: userID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg", SourceKind: job.SourceHTTP})
	require.NoError(t, err)
	j, err = s.CancelJob(ctx, userID, j.ID)
	require.NoError(t, err)
	return j
}

func waitNotification(t *testing.T, s *store.Store, jobID, state string) store.Notification {
	t.Helper()
	var last []store.Notification
	require.Eventually(t, func() bool {
		var err error
		last, err = s.JobNotifications(context.Background(), jobID)
		require.NoError(t, err)
		return len(last) == 1 && last[0].State == state
	}, 10*time.Second, 10*time.Millisecond, "notification never reached %s", state)
	return last[0]
}

// verify asks the Standard Webhooks reference library (npm standardwebhooks)
// whether each delivery's signature is good.
func verify(t *testing.T, secret string, ds []delivery) []string {
	t.Helper()
	dir, err := filepath.Abs("testdata/verifier")
	require.NoError(t, err)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "standardwebhooks")); err != nil {
		t.Fatalf("the webhook verifier is not installed: run `make deps` (npm ci in %s)", dir)
	}
	cases := make([]map[string]any, len(ds))
	for i, d := range ds {
		cases[i] = map[string]any{"secret": secret, "headers": d.Headers, "body": d.Body}
	}
	in, err := json.Marshal(cases)
	require.NoError(t, err)
	cmd := exec.Command("node", "verify.mjs")
	cmd.Dir, cmd.Stdin = dir, strings.NewReader(string(in))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(out)), "refused: ", "refused:"))
}

func TestWebhookRetriesUntilDeliveredAndEveryAttemptVerifies(t *testing.T) {
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		r := &receiver{codes: []int{503, 500, 204}}
		srv := httptest.NewServer(r)
		defer srv.Close()
		s, a := setup(t, open, notify.Config{Schedule: []time.Duration{20 * time.Millisecond, 20 * time.Millisecond, 20 * time.Millisecond}})
		_, err := s.UpdateAccount(context.Background(), "test", a.ID, store.AccountPatch{WebhookURL: new(srv.URL + "/hooks")})
		require.NoError(t, err)

		j := endJob(t, s, a.ID)
		n := waitNotification(t, s, j.ID, "delivered")
		require.Equal(t, 3, n.Attempts)
		require.Equal(t, "job.cancelled", n.Event)
		var codes []int
		for _, l := range n.Log {
			codes = append(codes, l.StatusCode)
		}
		require.Equal(t, []int{503, 500, 204}, codes, "the delivery log keeps every attempt")

		ds := r.deliveries()
		require.Len(t, ds, 3)
		for _, d := range ds {
			require.Equal(t, ds[0].Headers["webhook-id"], d.Headers["webhook-id"], "retries keep the message id, so receivers can deduplicate")
			var p notify.Payload
			require.NoError(t, json.Unmarshal([]byte(d.Body), &p))
			require.Equal(t, "job.cancelled", p.Type)
			require.JSONEq(t, `{"id":"`+j.ID+`","status":"cancelled"}`, string(p.Data))
		}
		require.Equal(t, []string{"ok", "ok", "ok"}, verify(t, a.WebhookSecret, ds))

		// The verifier can refuse: a changed body, another secret.
		tampered := ds[0]
		tampered.Body = strings.Replace(tampered.Body, "cancelled", "succeeded", 1)
		other := "whsec_" + strings.Repeat("A", 43) + "="
		got := verify(t, a.WebhookSecret, []delivery{tampered})
		require.True(t, strings.HasPrefix(got[0], "refused"), got)
		got = verify(t, other, ds[:1])
		require.True(t, strings.HasPrefix(got[0], "refused"), got)
	})
}

func TestWebhookGivesUpAfterTheScheduleAndAJobsOwnURLWins(t *testing.T) {
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		down := &receiver{codes: []int{500}}
		srv := httptest.NewServer(down)
		defer srv.Close()
		s, a := setup(t, open, notify.Config{Schedule: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}})
		ctx := context.Background()
		_, err := s.UpdateAccount(ctx, "test", a.ID, store.AccountPatch{WebhookURL: new("http://127.0.0.1:1/never")})
		require.NoError(t, err)
		j, err := s.CreateJob(ctx, store.NewJob{UserID: a.ID, URL: "http://example.com/a.ogg", CanonicalURL: "http://example.com/a.ogg",
			SourceKind: job.SourceHTTP, WebhookURL: srv.URL})
		require.NoError(t, err)
		_, err = s.CancelJob(ctx, a.ID, j.ID)
		require.NoError(t, err)
		n := waitNotification(t, s, j.ID, "failed")
		require.Equal(t, srv.URL, n.Target, "the job's webhook beats the user's default")
		require.Equal(t, 3, n.Attempts, "one attempt and one per scheduled retry")
		require.Len(t, down.deliveries(), 3)
		require.Contains(t, n.Log[2].Error, "500")
	})
}

func TestStandardScheduleSpansAboutADay(t *testing.T) {
	var total time.Duration
	for _, d := range notify.StandardSchedule {
		total += d
	}
	require.Greater(t, total, 24*time.Hour)
	require.Less(t, total, 30*time.Hour)
}

// mailbox is an SMTP backend that keeps every message.
type mailbox struct {
	mu   sync.Mutex
	msgs []string
}

type mailSession struct{ box *mailbox }

func (m *mailbox) NewSession(*smtp.Conn) (smtp.Session, error) { return mailSession{m}, nil }
func (mailSession) Reset()                                     {}
func (mailSession) Logout() error                              { return nil }
func (mailSession) Mail(string, *smtp.MailOptions) error       { return nil }
func (mailSession) Rcpt(string, *smtp.RcptOptions) error       { return nil }
func (s mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	s.box.mu.Lock()
	s.box.msgs = append(s.box.msgs, string(b))
	s.box.mu.Unlock()
	return err
}

func TestEmailGoesThroughARealSMTPServer(t *testing.T) {
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		box := &mailbox{}
		srv := smtp.NewServer(box)
		srv.Domain = "localhost"
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()

		s, a := setup(t, open, notify.Config{SMTPAddr: ln.Addr().String(), SMTPFrom: "captions@example.com"})
		_, err = s.UpdateAccount(context.Background(), "test", a.ID, store.AccountPatch{Email: new("alice@example.com")})
		require.NoError(t, err)
		j := endJob(t, s, a.ID)
		waitNotification(t, s, j.ID, "delivered")
		box.mu.Lock()
		defer box.mu.Unlock()
		require.Len(t, box.msgs, 1)
		require.Contains(t, box.msgs[0], "To: <alice@example.com>")
		require.Contains(t, box.msgs[0], "Subject: ytcaption: http://example.com/a.ogg cancelled")
		require.Contains(t, box.msgs[0], "Job "+j.ID+" cancelled.")
	})
}

func TestEmailWithoutSMTPFailsAtOnceWithAReason(t *testing.T) {
	eachDriver(t, func(t *testing.T, open storetest.Maker) {
		s, a := setup(t, open, notify.Config{})
		_, err := s.UpdateAccount(context.Background(), "test", a.ID, store.AccountPatch{Email: new("alice@example.com")})
		require.NoError(t, err)
		j := endJob(t, s, a.ID)
		n := waitNotification(t, s, j.ID, "failed")
		require.Equal(t, 1, n.Attempts)
		require.Contains(t, n.Log[0].Error, "email is not configured")
	})
}
