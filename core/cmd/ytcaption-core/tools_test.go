package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ytcaption/ytcaption/internal/envflag"
)

func sum(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }

// zipOf builds a zip of the given entries, in order.
func zipOf(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		hdr := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		hdr.SetMode(e.mode)
		w, err := zw.CreateHeader(hdr)
		require.NoError(t, err)
		_, err = w.Write(e.body)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

type zipEntry struct {
	name string
	body []byte
	mode os.FileMode
}

// releases serves files by path and counts the requests.
type releases struct {
	*httptest.Server
	files    map[string][]byte
	requests atomic.Int32
}

func serveReleases(t *testing.T, files map[string][]byte) *releases {
	r := &releases{files: files}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		b, ok := r.files[req.URL.Path]
		if !ok {
			http.NotFound(w, req)
			return
		}
		if req.URL.Query().Has("chunked") {
			// No Content-Length: only the limited copy can stop it.
			w.WriteHeader(http.StatusOK)
			w.(http.Flusher).Flush()
		}
		_, _ = w.Write(b)
	}))
	t.Cleanup(r.Close)
	return r
}

func fetchCmd(dir string, env map[string]string, args ...string) (string, error) {
	var out bytes.Buffer
	err := run(context.Background(), append([]string{"tools", "fetch", "--dir", dir}, args...),
		func(k string) string { return env[k] }, &out, io.Discard)
	return out.String(), err
}

func requireEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return
	}
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	require.Empty(t, names, "nothing installed, no temp file left")
}

func TestToolsFetch(t *testing.T) {
	t.Parallel()
	ytDlp := []byte("#!/bin/sh\necho 2026.11.20\n")
	deno := bytes.Repeat([]byte("deno binary "), 1000)
	denoZip := zipOf(t, zipEntry{"deno", deno, 0o755})
	bomb := zipOf(t, zipEntry{"deno", make([]byte, 8<<20), 0o755}) // 8 MiB of zeros: about 8 KB zipped
	srv := serveReleases(t, map[string][]byte{
		"/yt-dlp_linux": ytDlp, "/deno.zip": denoZip, "/bomb.zip": bomb,
		"/traversal.zip": zipOf(t, zipEntry{"../deno", deno, 0o755}),
		"/absolute.zip":  zipOf(t, zipEntry{"/usr/local/bin/deno", deno, 0o755}),
		"/nested.zip":    zipOf(t, zipEntry{"deno-x86_64/deno", deno, 0o755}),
		"/extra.zip":     zipOf(t, zipEntry{"deno", deno, 0o755}, zipEntry{"README.md", []byte("hi"), 0o644}),
		"/symlink.zip":   zipOf(t, zipEntry{"deno", []byte("/bin/sh"), os.ModeSymlink | 0o777}),
		"/big":           make([]byte, 2<<20),
	})
	env := map[string]string{
		"YTCAPTION_TOOLS_YT_DLP_URL": srv.URL + "/yt-dlp_linux", "YTCAPTION_TOOLS_YT_DLP_SHA256": sum(ytDlp),
		"YTCAPTION_TOOLS_DENO_URL": srv.URL + "/deno.zip", "YTCAPTION_TOOLS_DENO_SHA256": sum(denoZip),
	}

	t.Run("installs both, verified, executable; then skips them", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "tools")
		before := srv.requests.Load()
		out, err := fetchCmd(dir, env, "--allow-http")
		require.NoError(t, err)
		require.Contains(t, out, "yt-dlp: installed "+filepath.Join(dir, "yt-dlp"))
		require.Contains(t, out, "deno: installed "+filepath.Join(dir, "deno"))
		for name, want := range map[string][]byte{"yt-dlp": ytDlp, "deno": deno} {
			b, err := os.ReadFile(filepath.Join(dir, name))
			require.NoError(t, err)
			require.Equal(t, want, b, name)
			st, err := os.Stat(filepath.Join(dir, name))
			require.NoError(t, err)
			require.Equal(t, os.FileMode(0o755), st.Mode().Perm(), name)
		}
		require.Equal(t, before+2, srv.requests.Load())

		out, err = fetchCmd(dir, env, "--allow-http")
		require.NoError(t, err)
		require.Contains(t, out, "yt-dlp: already installed")
		require.Contains(t, out, "deno: already installed")
		require.Equal(t, before+2, srv.requests.Load(), "nothing downloaded again")

		// A binary changed in place is fetched again.
		require.NoError(t, os.WriteFile(filepath.Join(dir, "deno"), []byte("tampered"), 0o755))
		out, err = fetchCmd(dir, env, "--allow-http")
		require.NoError(t, err)
		require.Contains(t, out, "deno: installed")
		b, _ := os.ReadFile(filepath.Join(dir, "deno"))
		require.Equal(t, deno, b)
	})

	refusals := []struct {
		name   string
		env    map[string]string
		args   []string
		errMsg string
		usage  bool
	}{
		{"a checksum that differs", map[string]string{"YTCAPTION_TOOLS_DENO_SHA256": sum([]byte("other"))}, []string{"--allow-http"},
			"deno: checksum mismatch", false},
		{"a missing checksum", map[string]string{"YTCAPTION_TOOLS_DENO_SHA256": ""}, []string{"--allow-http"}, "deno: no SHA-256", true},
		{"a checksum that is no checksum", map[string]string{"YTCAPTION_TOOLS_YT_DLP_SHA256": "abc"}, []string{"--allow-http"}, "not 64 hex digits", true},
		{"plain http", nil, nil, `refusing a http URL (https only)`, true},
		{"an oversized download", map[string]string{"YTCAPTION_TOOLS_YT_DLP_URL": srv.URL + "/big", "YTCAPTION_TOOLS_YT_DLP_SHA256": sum(make([]byte, 2<<20))},
			[]string{"--allow-http", "--max-bytes", "1048576"}, "over --max-bytes", false},
		{"an oversized download without a length", map[string]string{"YTCAPTION_TOOLS_YT_DLP_URL": srv.URL + "/big?chunked", "YTCAPTION_TOOLS_YT_DLP_SHA256": sum(make([]byte, 2<<20))},
			[]string{"--allow-http", "--max-bytes", "1048576"}, "the download is over --max-bytes", false},
		{"a zip bomb", map[string]string{"YTCAPTION_TOOLS_DENO_URL": srv.URL + "/bomb.zip", "YTCAPTION_TOOLS_DENO_SHA256": sum(bomb)},
			[]string{"--allow-http", "--max-bytes", "1048576"}, "deno inflates to 8388608 bytes, over --max-bytes", false},
		{"a 404", map[string]string{"YTCAPTION_TOOLS_DENO_URL": srv.URL + "/gone.zip"}, []string{"--allow-http"}, "404 Not Found", false},
	}
	for _, entry := range []string{"traversal", "absolute", "nested", "extra", "symlink"} {
		b := srv.files["/"+entry+".zip"]
		refusals = append(refusals, struct {
			name   string
			env    map[string]string
			args   []string
			errMsg string
			usage  bool
		}{"a zip with " + entry, map[string]string{"YTCAPTION_TOOLS_DENO_URL": srv.URL + "/" + entry + ".zip", "YTCAPTION_TOOLS_DENO_SHA256": sum(b)},
			[]string{"--allow-http"}, `not just the file "deno": refused`, false})
	}
	for _, tc := range refusals {
		t.Run("refuses "+tc.name+", installing nothing", func(t *testing.T) {
			e := map[string]string{}
			for k, v := range env {
				e[k] = v
			}
			for k, v := range tc.env {
				e[k] = v
			}
			dir := filepath.Join(t.TempDir(), "tools")
			_, err := fetchCmd(dir, e, tc.args...)
			require.ErrorContains(t, err, tc.errMsg)
			require.Equal(t, tc.usage, envflag.ExitStatus("ytcaption-core", err, io.Discard) == 2, "usage error: %v", err)
			requireEmpty(t, dir)
		})
	}

	t.Run("the zip bomb's header lying about its size", func(t *testing.T) {
		// A zip whose header claims less than the entry inflates to.
		b := zipOf(t, zipEntry{"deno", make([]byte, 4<<20), 0o755})
		f := fetcher{dir: t.TempDir(), maxBytes: 1 << 20, stdout: io.Discard}
		zipPath := filepath.Join(t.TempDir(), "d.zip")
		require.NoError(t, os.WriteFile(zipPath, lieAboutSize(t, b, 1000), 0o600))
		_, _, err := f.unzip(zipPath, "deno")
		require.Error(t, err)
		requireEmpty(t, f.dir)
	})
}

// lieAboutSize rewrites the uncompressed size a zip's central directory
// claims for its first entry.
func lieAboutSize(t *testing.T, b []byte, size uint32) []byte {
	t.Helper()
	sig := []byte{'P', 'K', 1, 2}
	i := bytes.Index(b, sig)
	require.Positive(t, i)
	out := bytes.Clone(b)
	// Central directory header: uncompressed size at offset 24.
	out[i+24], out[i+25], out[i+26], out[i+27] = byte(size), byte(size>>8), byte(size>>16), byte(size>>24)
	return out
}

func TestToolsUsage(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	err := run(context.Background(), []string{"tools", "--help"}, func(string) string { return "" }, &out, io.Discard)
	require.ErrorIs(t, err, flag.ErrHelp, "help is an answer: exit status 0")
	for _, s := range []string{"--dir", "--yt-dlp-url", "$YTCAPTION_TOOLS_YT_DLP_SHA256", "--deno-url", "$YTCAPTION_TOOLS_DENO_SHA256", "--allow-http"} {
		require.Contains(t, out.String(), s)
	}
	_, err = fetchCmd(t.TempDir(), nil)
	require.ErrorContains(t, err, "nothing to fetch")
	err = run(context.Background(), []string{"tools", "fecth"}, func(string) string { return "" }, io.Discard, io.Discard)
	require.ErrorIs(t, err, errUsage)
}
