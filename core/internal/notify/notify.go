// Package notify tells users that their jobs ended: webhooks signed per the
// Standard Webhooks specification, and optional email over SMTP. Messages
// come from the outbox table that the job-finishing transaction fills, so
// none is lost to a crash, on PostgreSQL and on the single box's SQLite alike;
// on PostgreSQL every replica delivers, claiming rows with SKIP LOCKED. Each
// message is retried with backoff over about a day. Webhooks go out through
// the SSRF-safe client, behind a circuit breaker per target host.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/smtp"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/core/internal/store"
	"github.com/ytcaption/ytcaption/internal/breaker"
	"github.com/ytcaption/ytcaption/internal/egress"
)

// StandardSchedule is the wait before each retry, as the Standard Webhooks
// specification suggests: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h — eight
// attempts over about 27.5 hours.
var StandardSchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Config tunes the notifier.
type Config struct {
	AllowPrivate bool            // deliver to loopback and private addresses (dev stack and tests only)
	Schedule     []time.Duration // waits between attempts; default StandardSchedule
	Poll         time.Duration   // how often to look for due messages; default 1 s
	Timeout      time.Duration   // per delivery; default 15 s
	// SMTPAddr (host:port) and SMTPFrom enable email; without them email
	// messages fail at once with a note in the delivery log.
	SMTPAddr, SMTPFrom string
}

// Notifier delivers the outbox.
type Notifier struct {
	log      *slog.Logger
	store    *store.Store
	cfg      Config
	client   *http.Client
	render   func(job.Job) ([]byte, error)
	Breakers *breaker.Set // one per webhook host; the admin API lists and resets them
	sent     *prometheus.CounterVec
}

// New returns a notifier; render turns a job into its public JSON.
func New(log *slog.Logger, st *store.Store, cfg Config, render func(job.Job) ([]byte, error), reg prometheus.Registerer) *Notifier {
	if len(cfg.Schedule) == 0 {
		cfg.Schedule = StandardSchedule
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 15 * time.Second
	}
	// The one address policy (internal/egress), checked on every address
	// dialled. A redirect is an answer, not a delivery: following it would
	// let a target bounce signed payloads elsewhere.
	client := egress.NewClient(egress.Policy{AllowPrivate: cfg.AllowPrivate},
		egress.ClientConfig{Timeout: cfg.Timeout, MaxRedirects: egress.NoRedirects})
	n := &Notifier{
		log: log, store: st, cfg: cfg, client: client, render: render,
		Breakers: breaker.NewSet("webhook:", breaker.Config{Failures: 5, Cooldown: time.Minute}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ytcaption_core_notifications_total",
			Help: "Notification delivery attempts by channel and outcome (delivered, retry, failed).",
		}, []string{"channel", "outcome"}),
	}
	if reg != nil {
		reg.MustRegister(n.sent)
	}
	return n
}

// Run delivers due messages until ctx ends.
func (n *Notifier) Run(ctx context.Context) {
	t := time.NewTicker(n.cfg.Poll)
	defer t.Stop()
	for {
		n.deliverDue(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// claimHold is how long a claimed message waits before another replica may
// try it, should this one die mid-delivery: longer than one delivery.
func (n *Notifier) claimHold() time.Duration { return 2*n.cfg.Timeout + 30*time.Second }

func (n *Notifier) deliverDue(ctx context.Context) {
	for ctx.Err() == nil {
		due, err := n.store.ClaimNotifications(ctx, 16, n.claimHold())
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("claim notifications", "err", err)
			}
			return
		}
		if len(due) == 0 {
			return
		}
		for _, m := range due {
			n.deliver(ctx, m)
		}
	}
}

func (n *Notifier) deliver(ctx context.Context, m store.Notification) {
	j, data, err := n.subject(ctx, m)
	if err != nil {
		n.log.Warn("notification: read job", "job_id", m.JobID, "err", err)
		return // the claim hold brings it back
	}
	start := time.Now()
	var a store.DeliveryAttempt
	switch m.Channel {
	case "webhook":
		b := n.Breakers.Get(host(m.Target))
		if b.Open() {
			if err := n.store.PostponeNotification(ctx, m.ID, time.Minute); err != nil {
				n.log.Warn("postpone notification", "err", err)
			}
			return
		}
		err = b.Do(func() error {
			a.StatusCode, err = n.post(ctx, m, data)
			return err
		})
	case "email":
		err = n.mail(m, j)
	default:
		err = fmt.Errorf("unknown channel %q", m.Channel)
	}
	a.Duration = time.Since(start)
	retryIn := time.Duration(0)
	outcome := "delivered"
	if err != nil {
		a.Error = err.Error()
		outcome = "failed"
		if m.Attempts <= len(n.cfg.Schedule) && !errors.Is(err, errPermanent) {
			retryIn, outcome = n.cfg.Schedule[m.Attempts-1], "retry"
		}
	}
	n.sent.WithLabelValues(m.Channel, outcome).Inc()
	n.log.Info("notification", "job_id", m.JobID, "channel", m.Channel, "event", m.Event, "attempt", m.Attempts,
		"status_code", a.StatusCode, "outcome", outcome, "err", a.Error)
	if err := n.store.NotificationResult(context.WithoutCancel(ctx), m.ID, a, retryIn); err != nil {
		n.log.Warn("record notification attempt", "err", err)
	}
}

// errPermanent marks failures no retry can mend (no SMTP configured).
var errPermanent = errors.New("permanent")

// Payload is a webhook's body.
type Payload struct {
	Type      string          `json:"type"`
	Timestamp time.Time       `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
}

func (n *Notifier) post(ctx context.Context, m store.Notification, data []byte) (int, error) {
	now := time.Now()
	body, err := json.Marshal(Payload{Type: m.Event, Timestamp: now.UTC(), Data: data})
	if err != nil {
		return 0, err
	}
	id := "msg_" + m.ID // the same on every retry: receivers deduplicate on it
	sig, err := Sign(m.WebhookSecret, id, now, body)
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, n.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.Target, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("webhook URL: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ytcaption-webhooks")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := n.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("the target answered %s", resp.Status)
	}
	return resp.StatusCode, nil
}

// Sign is the Standard Webhooks signature of body: "v1," and the base64
// HMAC-SHA256, keyed with the secret's bytes, of "id.timestamp.body".
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return "", fmt.Errorf("webhook secret: %w", err)
	}
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, ts.Unix())
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

func (n *Notifier) mail(m store.Notification, j job.Job) error {
	if n.cfg.SMTPAddr == "" || n.cfg.SMTPFrom == "" {
		return fmt.Errorf("%w: email is not configured on this deployment (--smtp-addr, --smtp-from)", errPermanent)
	}
	title := j.MediaTitle
	if title == "" {
		title = j.URL
	}
	title = strings.NewReplacer("\r", " ", "\n", " ").Replace(title) // a header line
	var b strings.Builder
	fmt.Fprintf(&b, "From: ytcaption <%s>\r\nTo: <%s>\r\nSubject: ytcaption: %s %s\r\n", n.cfg.SMTPFrom, m.Target, title, j.Status)
	fmt.Fprintf(&b, "Message-ID: <%s@ytcaption>\r\nDate: %s\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n", m.ID, time.Now().UTC().Format(time.RFC1123Z))
	fmt.Fprintf(&b, "Job %s %s.\r\n\r\nURL: %s\r\n", j.ID, j.Status, j.URL)
	if j.ErrorCode != "" {
		fmt.Fprintf(&b, "Error: %s: %s\r\n", j.ErrorCode, j.ErrorMessage)
	}
	if j.Status == job.StatusSucceeded {
		fmt.Fprintf(&b, "Audio: %s\r\nTranscript: GET /v1/jobs/%s/transcript\r\n", j.MediaDuration.Round(time.Second), j.ID)
	}
	return smtp.SendMail(n.cfg.SMTPAddr, nil, n.cfg.SMTPFrom, []string{m.Target}, []byte(b.String()))
}

func host(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	return u.Host
}
