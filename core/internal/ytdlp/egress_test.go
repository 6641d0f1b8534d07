package ytdlp

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/core/internal/job"
	"github.com/ytcaption/ytcaption/internal/egress"
	"github.com/ytcaption/ytcaption/internal/proxytest"
)

// serveOn starts h on addr (127.0.0.2 is loopback too on Linux, and a
// different address to the policy) and counts its requests.
func serveOn(t *testing.T, addr string, h http.Handler) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", addr+":0")
	require.NoError(t, err)
	var n atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		h.ServeHTTP(w, r)
	}))
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &n
}

// page is a web page holding one HTML5 <video>, what yt-dlp's generic
// extractor reads.
func page(media string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>A talk</title></head><body>
<video controls><source src="%s" type="audio/wav"></video></body></html>`, media)
	})
}

// TestRealYtDlpCannotBeLedToAForbiddenAddressByAPage is the attack the
// egress proxy stops: a page at an allowed address whose media URL points at
// loopback. yt-dlp follows pages wherever they say; the proxy refuses the
// connection, the job fails source_forbidden, and the loopback server never
// sees a request.
func TestRealYtDlpCannotBeLedToAForbiddenAddressByAPage(t *testing.T) {
	t.Parallel()
	secret, hits := serveOn(t, "127.0.0.1", http.FileServer(http.Dir(filepath.Dir(clip))))
	pg, _ := serveOn(t, "127.0.0.2", page(secret.URL+"/"+filepath.Base(clip)))
	// Production's policy, but for the page's one address.
	policy := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	d := New(Config{Extractors: "generic,html5", Policy: policy})

	_, err := d.Download(context.Background(), t.TempDir(), pg.URL+"/talk")
	require.Equal(t, job.CodeSourceForbidden, job.CodeOf(err), "%v", err)
	require.ErrorIs(t, err, egress.ErrAddressNotAllowed)
	require.Zero(t, hits.Load(), "the loopback server saw a request")

	// The same page with its media beside it downloads: the proxy is in
	// the way of nothing else.
	media, mediaHits := serveOn(t, "127.0.0.2", http.FileServer(http.Dir(filepath.Dir(clip))))
	ok, _ := serveOn(t, "127.0.0.2", page(media.URL+"/"+filepath.Base(clip)))
	r, err := d.Download(context.Background(), t.TempDir(), ok.URL+"/talk")
	require.NoError(t, err)
	st, err := os.Stat(r.Path)
	require.NoError(t, err)
	want, _ := os.Stat(clip)
	require.Equal(t, want.Size(), st.Size())
	require.Positive(t, mediaHits.Load())
}

// TestYtDlpTrafficGoesThroughTheOutboundProxy: with an outbound proxy set,
// yt-dlp's requests reach it — behind the egress proxy, never around it.
func TestYtDlpTrafficGoesThroughTheOutboundProxy(t *testing.T) {
	t.Parallel()
	media, _ := serveOn(t, "127.0.0.2", http.FileServer(http.Dir(filepath.Dir(clip))))
	pg, _ := serveOn(t, "127.0.0.2", page(media.URL+"/"+filepath.Base(clip)))
	var seen atomic.Int64
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A plain-HTTP forward proxy: absolute-form requests.
		seen.Add(1)
		require.True(t, r.URL.IsAbs(), r.URL.String())
		proxytest.Forward(w, r)
	}))
	defer upstream.Close()
	d := New(Config{Extractors: "generic,html5", Policy: egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}}).
		Via(Route{Proxy: upstream.URL})
	_, err := d.Download(context.Background(), t.TempDir(), pg.URL+"/talk")
	require.NoError(t, err)
	require.GreaterOrEqual(t, seen.Load(), int64(2), "the page and the media through the outbound proxy")
}

// TestYtDlpGetsOnlyItsOwnEnvironment: yt-dlp (and whatever it starts: ffmpeg,
// Deno) sees a private HOME, PATH, a locale and the egress proxy in every
// variable a helper may read — never core's own environment, which holds
// database URLs, S3 keys and service tokens.
func TestYtDlpGetsOnlyItsOwnEnvironment(t *testing.T) {
	t.Setenv("YTCAPTION_CORE_S3_SECRET_KEY", "hunter2")
	t.Setenv("no_proxy", "*") // would let a helper bypass the proxy
	dir := t.TempDir()
	envFile := filepath.Join(dir, "env")
	bin := filepath.Join(dir, "yt-dlp")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\nenv > "+envFile+"\nexit 1\n"), 0o755))
	jobDir := t.TempDir()
	_, _ = New(Config{Binary: bin}).Download(context.Background(), jobDir, "https://www.youtube.com/watch?v=dQw4w9WgXcQ")

	b, err := os.ReadFile(envFile)
	require.NoError(t, err)
	env := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(line, "=")
		env[k] = v
	}
	for _, shell := range []string{"PWD", "SHLVL", "_", "OLDPWD"} {
		delete(env, shell) // the shell's own
	}
	proxy := env["HTTP_PROXY"]
	require.Regexp(t, `^http://127\.0\.0\.1:\d+$`, proxy)
	require.Equal(t, map[string]string{
		"HOME": filepath.Join(jobDir, ".home"), "XDG_CACHE_HOME": filepath.Join(jobDir, ".home", "cache"),
		"XDG_CONFIG_HOME": filepath.Join(jobDir, ".home", "config"), "PATH": os.Getenv("PATH"), "LANG": "C.UTF-8",
		"http_proxy": proxy, "https_proxy": proxy, "HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "ALL_PROXY": proxy,
	}, env)
}

// TestRealYtDlpOpensNoOtherProtocolForAPage: a page whose media is an
// rtmp:// URL on loopback. yt-dlp hands rtmp to rtmpdump (here a stand-in on
// PATH that records that it ran), which connects where the page says with no
// HTTP proxy in the way; the format filter leaves such formats out, so the
// job fails and no downloader runs.
func TestRealYtDlpOpensNoOtherProtocolForAPage(t *testing.T) {
	bin := t.TempDir()
	ran := filepath.Join(t.TempDir(), "rtmpdump-ran")
	require.NoError(t, os.WriteFile(filepath.Join(bin, "rtmpdump"), []byte("#!/bin/sh\necho RTMPDump v2.4\ntouch "+ran+"\nexit 1\n"), 0o755))
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	policy := egress.Policy{Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}
	pg, _ := serveOn(t, "127.0.0.2", page("rtmp://127.0.0.1:1935/live/talk"))
	_, err := New(Config{Extractors: "generic,html5", Policy: policy}).Download(context.Background(), t.TempDir(), pg.URL+"/talk")
	require.Equal(t, job.CodeDownloadFailed, job.CodeOf(err), "%v", err)
	require.Contains(t, err.Error(), "no format this server fetches")
	require.NoFileExists(t, ran, "rtmpdump ran for a page's rtmp:// media")
}
