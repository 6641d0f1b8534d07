package security

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// canary is a server on every local address (IPv4 and IPv6) that counts the
// connections it accepts: an SSRF defence holds when it counts none.
type canary struct {
	port     int
	accepted atomic.Int64
	paths    chan string
}

func startCanary(t *testing.T) *canary {
	t.Helper()
	ln, err := net.Listen("tcp", ":0") // dual stack, all local addresses
	require.NoError(t, err)
	c := &canary{port: ln.Addr().(*net.TCPAddr).Port, paths: make(chan string, 100)}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case c.paths <- r.URL.String():
		default:
		}
		w.Header().Set("Content-Type", "audio/wav")
		_, _ = w.Write([]byte("RIFF"))
	}), ReadHeaderTimeout: 5 * time.Second}
	counting := &countingListener{Listener: ln, n: &c.accepted}
	go func() { _ = srv.Serve(counting) }()
	t.Cleanup(func() { srv.Close() })
	return c
}

type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// ssrfURLs are the forms of "this machine" an attacker writes into a media
// URL, each pointing at the canary's port.
func ssrfURLs(port int) []string {
	p := fmt.Sprint(port)
	urls := []string{
		"http://127.0.0.1:" + p + "/a.wav",
		"http://127.0.0.2:" + p + "/a.wav",
		"http://127.1:" + p + "/a.wav",                  // short form
		"http://2130706433:" + p + "/a.wav",             // decimal
		"http://0x7f000001:" + p + "/a.wav",             // hex
		"http://0177.0.0.1:" + p + "/a.wav",             // octal
		"http://0x7f.0.0.1:" + p + "/a.wav",             // mixed
		"http://127.0.0.1.:" + p + "/a.wav",             // trailing dot
		"http://localhost:" + p + "/a.wav",              // name
		"http://localhost.:" + p + "/a.wav",             // name, trailing dot
		"http://LOCALHOST:" + p + "/a.wav",              // case
		"http://media.localhost:" + p + "/a.wav",        // RFC 6761
		"http://0:" + p + "/a.wav",                      // 0.0.0.0 dials this host on Linux
		"http://0.0.0.0:" + p + "/a.wav",                //
		"http://[::]:" + p + "/a.wav",                   // unspecified IPv6 dials this host too
		"http://[::1]:" + p + "/a.wav",                  // IPv6 loopback
		"http://[::1%25lo]:" + p + "/a.wav",             // loopback with a zone id
		"http://[fe80::1%25lo]:" + p + "/a.wav",         // link-local with a zone id
		"http://[::ffff:127.0.0.1]:" + p + "/a.wav",     // IPv4-mapped
		"http://[::ffff:7f00:1]:" + p + "/a.wav",        // IPv4-mapped, hex
		"http://[0:0:0:0:0:ffff:127.0.0.1]:" + p + "/a", // IPv4-mapped, long
		"http://[::127.0.0.1]:" + p + "/a.wav",          // IPv4-compatible
		"http://[64:ff9b::7f00:1]:" + p + "/a.wav",      // NAT64
		"http://[2002:7f00:1::]:" + p + "/a.wav",        // 6to4
		"http://good.example@127.0.0.1:" + p + "/a.wav", // userinfo
		"http://127.0.0.1:" + p + "#@good.example/a.wav",
		"http://[::ffff:127.0.0.1%25lo]:" + p + "/a.wav", // mapped with a zone
		"HTTP://127.0.0.1:" + p + "/a.wav",               // scheme case
	}
	// The machine's own name resolves to a loopback address on many hosts.
	if h, err := os.Hostname(); err == nil {
		if addrs, err := net.LookupHost(h); err == nil && len(addrs) > 0 {
			urls = append(urls, "http://"+h+":"+p+"/a.wav")
		}
	}
	return urls
}

// TestSSRFEveryFormOfThisMachineIsRefused submits, through the public API of
// a production stack, media URLs and webhook URLs in every form that leads
// back to this machine; each must be refused at once (400) or fail its job
// with source_forbidden, and the canary listening on every local address
// must see no connection at all.
func TestSSRFEveryFormOfThisMachineIsRefused(t *testing.T) {
	s := startStack(t, options{noNode: true})
	can := startCanary(t)
	var pending []string
	refusedNow, refusedLater := 0, 0
	for _, u := range ssrfURLs(can.port) {
		r := call(t, http.MethodPost, s.edgeURL+"/v1/jobs", s.key, map[string]any{"url": u})
		switch r.status {
		case http.StatusBadRequest:
			require.Equal(t, "invalid_url", r.code(), "%s: %s", u, r.body)
			refusedNow++
		case http.StatusAccepted:
			pending = append(pending, r.json["id"].(string)+" "+u)
		default:
			t.Fatalf("%s: answered %d %s", u, r.status, r.body)
		}
	}
	// Webhooks go through the same policy: a job that fails at once (its
	// host does not exist) would notify each of these.
	for _, hook := range []string{"[::1%25lo]", "127.1", "[::ffff:127.0.0.1]", "0", "localhost.", "[64:ff9b::7f00:1]"} {
		u := fmt.Sprintf("http://%s:%d/hook", hook, can.port)
		r := call(t, http.MethodPost, s.edgeURL+"/v1/jobs", s.key, map[string]any{"url": "https://media.invalid/a.wav", "webhook_url": u})
		switch r.status {
		case http.StatusBadRequest:
			refusedNow++
		case http.StatusAccepted:
			pending = append(pending, r.json["id"].(string)+" webhook "+u)
		default:
			t.Fatalf("webhook %s: answered %d %s", u, r.status, r.body)
		}
	}
	for _, p := range pending {
		id, what, _ := strings.Cut(p, " ")
		j := s.waitJob(s.key, id, 2*time.Minute)
		require.Equal(t, "failed", j["status"], what)
		if !strings.HasPrefix(what, "webhook") {
			require.Equal(t, "source_forbidden", errorCode(j), "%s: %v", what, j["error"])
			refusedLater++
		}
	}
	// A webhook is sent after the job ends: wait for the notifier's first
	// attempt at each, which the policy must refuse.
	hooks := float64(len(pending) - refusedLater)
	require.Eventually(t, func() bool {
		return metric(t, s.coreMetrics, `ytcaption_core_notifications_total{channel="webhook"`) >= hooks
	}, time.Minute, 200*time.Millisecond, "the notifier did not try the webhooks")
	t.Logf("%d URLs refused at creation, %d failed source_forbidden, %d webhook jobs; canary connections: %d",
		refusedNow, refusedLater, len(pending)-refusedLater, can.accepted.Load())
	require.Zero(t, can.accepted.Load(), "the canary was reached")
	require.GreaterOrEqual(t, refusedNow+refusedLater, 28)
}
