package security

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/bombtest"
)

// inflated is 1 GiB of zeros, gzip-compressed: about 1 MB on the wire.
var inflated = sync.OnceValue(func() []byte { return bombtest.Gzip(1 << 10) })

// maxGrowth is the most a process's resident memory may grow while it
// refuses inflated bodies.
const maxGrowth = 64 << 20

// bomb is one way to send the inflated body to a door.
type bomb struct {
	name    string
	target  func(s *stack) (*process, string) // the process behind the door, and the URL
	header  []string                          // extra headers
	key     func(s *stack) string             // the credential sent, "" for none
	keyName string                            // what the credential is, for the report
	grpc    bool                              // gRPC framing over HTTP/2 (h2c)
}

func edgeREST(path string) func(s *stack) (*process, string) {
	return func(s *stack) (*process, string) { return s.edge, s.edgeURL + path }
}

func edgeFront(procedure string) func(s *stack) (*process, string) {
	return func(s *stack) (*process, string) { return s.edge, s.frontURL + procedure }
}

func coreAPI(path string) func(s *stack) (*process, string) {
	return func(s *stack) (*process, string) { return s.core, s.coreURL + path }
}

var (
	noKey      = func(*stack) string { return "" }
	userKey    = func(s *stack) string { return s.key }
	madeUp     = func(*stack) string { return "ytc_madeupmadeupmadeupmadeup" }
	service    = func(s *stack) string { return s.serviceToken }
	nodeToken  = func(s *stack) string { return s.nodeToken }
	gz         = []string{"Content-Encoding", "gzip"}
	connectRPC = []string{"Content-Type", "application/proto", "Content-Encoding", "gzip", "Connect-Protocol-Version", "1"}
)

// TestInflatedBodiesCannotGrowAnyProcess sends, to every listener a stranger
// can reach, four requests at once whose bodies inflate to 1 GiB each —
// without a credential, with a made-up one and with a valid one — and checks
// that each is refused with a 4xx (or a gRPC error) and that the process's
// peak resident memory grew by at most 64 MB. It prints the growth per door.
func TestInflatedBodiesCannotGrowAnyProcess(t *testing.T) {
	s := startStack(t, options{})
	nodeMetrics := func(s *stack) (*process, string) { return s.node, s.nodeMetrics }
	bombs := []bomb{
		{name: "edge REST POST /v1/jobs", target: edgeREST("/v1/jobs"), header: append([]string{"Content-Type", "application/json"}, gz...), key: noKey, keyName: "none"},
		{name: "edge REST POST /v1/jobs", target: edgeREST("/v1/jobs"), header: append([]string{"Content-Type", "application/json"}, gz...), key: madeUp, keyName: "made-up"},
		{name: "edge REST POST /v1/jobs", target: edgeREST("/v1/jobs"), header: append([]string{"Content-Type", "application/json"}, gz...), key: userKey, keyName: "valid"},
		{name: "edge REST POST /v1/audio/transcriptions", target: edgeREST("/v1/audio/transcriptions"),
			header: append([]string{"Content-Type", "multipart/form-data; boundary=x"}, gz...), key: userKey, keyName: "valid"},
		{name: "edge Connect CreateJob", target: edgeFront("/ytcaption.v1.JobService/CreateJob"), header: connectRPC, key: noKey, keyName: "none"},
		{name: "edge Connect CreateJob", target: edgeFront("/ytcaption.v1.JobService/CreateJob"), header: connectRPC, key: userKey, keyName: "valid"},
		{name: "edge Connect UploadJob", target: edgeFront("/ytcaption.v1.JobService/UploadJob"), header: connectRPC, key: userKey, keyName: "valid"},
		{name: "edge gRPC CreateJob", target: edgeFront("/ytcaption.v1.JobService/CreateJob"), key: noKey, keyName: "none", grpc: true},
		{name: "edge gRPC UploadJob", target: edgeFront("/ytcaption.v1.JobService/UploadJob"), key: userKey, keyName: "valid", grpc: true},
		{name: "core Connect CreateJob", target: coreAPI("/ytcaption.v1.JobService/CreateJob"), header: connectRPC, key: noKey, keyName: "none"},
		{name: "core Connect CreateJob", target: coreAPI("/ytcaption.v1.JobService/CreateJob"), header: connectRPC, key: service, keyName: "service token"},
		{name: "core Connect UploadJob", target: coreAPI("/ytcaption.v1.JobService/UploadJob"), header: connectRPC, key: noKey, keyName: "none"},
		{name: "core Connect UploadJob", target: coreAPI("/ytcaption.v1.JobService/UploadJob"), header: connectRPC, key: service, keyName: "service token"},
		{name: "core Connect PushSegments", target: coreAPI("/ytcaption.v1.WorkerService/PushSegments"), header: connectRPC, key: noKey, keyName: "none"},
		{name: "core Connect PushSegments", target: coreAPI("/ytcaption.v1.WorkerService/PushSegments"), header: connectRPC, key: nodeToken, keyName: "node token"},
		{name: "core gRPC AcquireJob", target: coreAPI("/ytcaption.v1.WorkerService/AcquireJob"), key: nodeToken, keyName: "node token", grpc: true},
		{name: "core dashboard POST /admin/login", target: coreAPI("/admin/login"),
			header: append([]string{"Content-Type", "application/x-www-form-urlencoded"}, gz...), key: noKey, keyName: "none"},
		{name: "gpu-node POST /metrics", target: nodeMetrics, header: gz, key: noKey, keyName: "none"},
	}
	var report strings.Builder
	fmt.Fprintf(&report, "\n%-42s %-14s %-8s %s\n", "door", "credential", "answer", "peak RSS growth")
	for _, b := range bombs {
		p, url := b.target(s)
		before, _ := p.memory(t)
		answers := make([]string, 4)
		var wg sync.WaitGroup
		for i := range answers {
			wg.Go(func() { answers[i] = send(t, b, url, b.key(s)) })
		}
		wg.Wait()
		require.False(t, p.exited(), "%s died under %s", p.name, b.name)
		_, peak := p.memory(t)
		growth := max(0, peak-before)
		fmt.Fprintf(&report, "%-42s %-14s %-8s %.1f MB\n", b.name, b.keyName, answers[0], float64(growth)/(1<<20))
		for _, a := range answers {
			require.True(t, a == "closed" || strings.HasPrefix(a, "4") || strings.HasPrefix(a, "grpc:") && a != "grpc:0" && a != "grpc:",
				"%s (%s): answered %s, want a 4xx or a gRPC error", b.name, b.keyName, a)
		}
		require.LessOrEqual(t, growth, int64(maxGrowth), "%s (%s): %s's peak resident memory grew by %d MB", b.name, b.keyName, p.name, growth>>20)
	}
	t.Log(report.String())
}

// send delivers one inflated body and returns the HTTP status, or
// "grpc:<status>" for gRPC; a connection the server closed is "closed",
// which also holds the door.
func send(t *testing.T, b bomb, url, key string) string {
	body := inflated()
	var client *http.Client
	header := b.header
	if b.grpc {
		frame := make([]byte, 5, 5+len(body))
		frame[0] = 1 // compressed
		binary.BigEndian.PutUint32(frame[1:], uint32(len(body)))
		body = append(frame, body...)
		header = []string{"Content-Type", "application/grpc", "Grpc-Encoding", "gzip", "Te", "trailers"}
		client = &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{Protocols: h2c()}}
	} else {
		client = &http.Client{Timeout: 60 * time.Second}
	}
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	require.NoError(t, err)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := client.Do(req)
	if err != nil {
		require.True(t, isClosed(err), "%s: %v", b.name, err)
		return "closed"
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if b.grpc {
		st := resp.Trailer.Get("Grpc-Status")
		if st == "" {
			st = resp.Header.Get("Grpc-Status")
		}
		return "grpc:" + st
	}
	return fmt.Sprint(resp.StatusCode)
}

func h2c() *http.Protocols {
	p := new(http.Protocols)
	p.SetUnencryptedHTTP2(true)
	return p
}

func isClosed(err error) bool {
	s := err.Error()
	return strings.Contains(s, "connection reset") || strings.Contains(s, "broken pipe") || strings.Contains(s, "EOF") ||
		strings.Contains(s, "server closed")
}
