package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/internal/backoff"
)

// The client half of tus 1.0 (the core protocol and its creation
// extension), against the edge's /v1/uploads: create the upload, PATCH it
// in chunks, and after a dropped connection ask the server (HEAD) how much
// arrived and go on from there. The upload's URL is remembered per file in
// the user's cache directory, so a second run after Ctrl-C or a crash
// resumes instead of sending the file again.

const (
	tusVersion = "1.0.0"
	// tusChunk is one PATCH: small enough that a dropped connection loses
	// little, large enough that requests are few.
	tusChunk = 8 << 20
	// tusKeep is how long a remembered upload is worth asking about: the
	// server forgets unfinished uploads after 24 h.
	tusKeep = 24 * time.Hour
)

// errNoTus is a server without resumable uploads (an edge older than them).
var errNoTus = errors.New("the server has no resumable uploads (/v1/uploads)")

// uploader sends one file with tus.
type uploader struct {
	cl     *client
	chunk  int64
	state  string                  // the file remembering unfinished uploads ("": none)
	onSent func(sent, total int64) // progress, called as bytes leave
	now    func() time.Time
}

func newUploader(cl *client, getenv func(string) string, onSent func(sent, total int64)) *uploader {
	state, _ := uploadStatePath(getenv) // no cache directory: nothing is remembered
	return &uploader{cl: cl, chunk: tusChunk, state: state, onSent: onSent, now: time.Now}
}

// uploadStatePath is $XDG_CACHE_HOME/ytcaption/uploads.json, or under
// ~/.cache: what is lost with it is only the chance to resume.
func uploadStatePath(getenv func(string) string) (string, error) {
	dir := getenv("XDG_CACHE_HOME")
	if dir == "" {
		home := getenv("HOME")
		if home == "" {
			return "", errors.New("neither XDG_CACHE_HOME nor HOME is set")
		}
		dir = filepath.Join(home, ".cache")
	}
	return filepath.Join(dir, "ytcaption", "uploads.json"), nil
}

// saved is one remembered upload.
type saved struct {
	URL     string    `json:"url"`
	Created time.Time `json:"created"`
}

// fileKey names a file's upload: the server, the file's absolute path,
// size and modification time — a file changed since is another upload.
func fileKey(base, file string, fi os.FileInfo) string {
	abs, err := filepath.Abs(file)
	if err != nil {
		abs = file
	}
	return fmt.Sprintf("%s %s %d %d", base, abs, fi.Size(), fi.ModTime().UnixNano())
}

func (u *uploader) load() map[string]saved {
	m := map[string]saved{}
	if u.state == "" {
		return m
	}
	if b, err := os.ReadFile(u.state); err == nil {
		_ = json.Unmarshal(b, &m) // a damaged file only loses the chance to resume
	}
	for k, s := range m {
		if u.now().Sub(s.Created) > tusKeep {
			delete(m, k)
		}
	}
	return m
}

// save writes the remembered uploads through a renamed temporary file, so
// a crash never leaves half a file. Two clients at once may lose one's
// entry: that upload then starts over, nothing worse.
func (u *uploader) save(m map[string]saved) {
	if u.state == "" {
		return
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil || os.MkdirAll(filepath.Dir(u.state), 0o700) != nil {
		return
	}
	tmp := u.state + ".tmp"
	if os.WriteFile(tmp, b, 0o600) == nil {
		_ = os.Rename(tmp, u.state)
	}
}

func (u *uploader) remember(key, loc string) {
	m := u.load()
	m[key] = saved{URL: loc, Created: u.now()}
	u.save(m)
}

func (u *uploader) forget(key string) {
	m := u.load()
	if _, ok := m[key]; ok {
		delete(m, key)
		u.save(m)
	}
}

// upload sends the file, or what of it the server lacks, and returns the
// upload's id and the key it is remembered under (forget it once a job
// holds the upload).
func (u *uploader) upload(ctx context.Context, file string) (id, key string, err error) {
	f, err := os.Open(file)
	if err != nil {
		return "", "", err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", "", err
	}
	size := fi.Size()
	key = fileKey(u.cl.base, file, fi)
	loc := u.load()[key].URL
	offset := int64(0)
	if loc != "" {
		offset, err = u.head(ctx, loc)
		var ae *apiError
		var nx *notEdgeError
		switch {
		case err == nil:
		case errors.As(err, &nx), errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusGone || ae.Status == http.StatusForbidden):
			// Expired, swept, or another key's: start over.
			u.forget(key)
			loc, offset = "", 0
		default:
			return "", "", err
		}
	}
	if loc == "" {
		if loc, err = u.create(ctx, filepath.Base(file), size); err != nil {
			return "", "", err
		}
		u.remember(key, loc)
	}
	failures := 0
	for offset < size {
		u.onSent(offset, size)
		next, err := u.patch(ctx, f, loc, offset, size)
		if err == nil && next <= offset {
			// A server that takes nothing would be asked forever.
			err = fmt.Errorf("the server took none of the bytes sent at offset %d (it answered Upload-Offset %d)", offset, next)
		}
		if err == nil {
			offset, failures = next, 0
			continue
		}
		var ae *apiError
		conflict := errors.As(err, &ae) && ae.Status == http.StatusConflict // our offset was not the server's
		if ctx.Err() != nil || (!retryable(err) && !conflict) {
			return "", "", err
		}
		if failures++; failures >= u.cl.tries {
			return "", "", fmt.Errorf("upload %s: %w", filepath.Base(file), err)
		}
		backoff.Sleep(ctx, backoff.Full(failures, 250*time.Millisecond, 5*time.Second))
		// The server keeps what arrived of a dropped PATCH: go on from
		// its offset, not from the chunk's start.
		if now, err := u.head(ctx, loc); err == nil {
			if now > offset {
				failures = 0
			}
			offset = now
		}
	}
	u.onSent(size, size)
	lu, _ := url.Parse(loc)
	return path.Base(lu.Path), key, nil
}

func (u *uploader) request(ctx context.Context, method, target string, body io.Reader, length int64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, body)
	if err != nil {
		return nil, err
	}
	req.ContentLength = length
	if length == 0 {
		req.Body = http.NoBody
	}
	req.Header.Set("Tus-Resumable", tusVersion)
	return req, nil
}

// create starts an upload of size bytes and returns its URL.
func (u *uploader) create(ctx context.Context, name string, size int64) (string, error) {
	req, err := u.request(ctx, http.MethodPost, u.cl.base+"/v1/uploads", nil, 0)
	if err != nil {
		return "", err
	}
	req.Header.Set("Upload-Length", strconv.FormatInt(size, 10))
	req.Header.Set("Upload-Metadata", "filename "+base64.StdEncoding.EncodeToString([]byte(name)))
	resp, err := u.cl.do(req)
	var ae *apiError
	var nx *notEdgeError
	switch {
	case errors.As(err, &nx), errors.As(err, &ae) && (ae.Status == http.StatusNotFound || ae.Status == http.StatusMethodNotAllowed):
		return "", errNoTus
	case err != nil:
		return "", err
	}
	resp.Body.Close()
	return u.location(resp.Header.Get("Location"))
}

// location is the upload's URL on the server the client was given: only
// the upload's id is taken from the server's Location. The key goes
// wherever that URL points, so never to another host; and an edge behind a
// proxy that ends TLS names itself http://, which the client must not
// follow either.
func (u *uploader) location(loc string) (string, error) {
	ref, err := url.Parse(loc)
	if err != nil || loc == "" {
		return "", fmt.Errorf("the server's upload has no usable Location (%q)", loc)
	}
	dir, id := path.Split(ref.Path)
	if !strings.HasSuffix(dir, "/v1/uploads/") && dir != "" || id == "" || id == "." || id == ".." {
		return "", fmt.Errorf("the server's Location %q is not an upload's URL", loc)
	}
	return u.cl.base + "/v1/uploads/" + url.PathEscape(id), nil
}

// head asks how much of the upload the server holds.
func (u *uploader) head(ctx context.Context, loc string) (int64, error) {
	req, err := u.request(ctx, http.MethodHead, loc, nil, 0)
	if err != nil {
		return 0, err
	}
	resp, err := u.cl.do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return uploadOffset(resp)
}

// patch sends one chunk from offset and returns the server's new offset.
func (u *uploader) patch(ctx context.Context, f *os.File, loc string, offset, size int64) (int64, error) {
	n := min(u.chunk, size-offset)
	body := &counter{r: io.NewSectionReader(f, offset, n), at: offset, total: size, onSent: u.onSent}
	req, err := u.request(ctx, http.MethodPatch, loc, body, n)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Upload-Offset", strconv.FormatInt(offset, 10))
	req.Header.Set("Content-Type", "application/offset+octet-stream")
	resp, err := u.cl.do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return uploadOffset(resp)
}

func uploadOffset(resp *http.Response) (int64, error) {
	n, err := strconv.ParseInt(resp.Header.Get("Upload-Offset"), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("the server's answer has no Upload-Offset (%q): is it a tus server?", resp.Header.Get("Upload-Offset"))
	}
	return n, nil
}

// counter reports the bytes of a chunk as the request reads them.
type counter struct {
	r      io.Reader
	at     int64
	total  int64
	onSent func(sent, total int64)
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.at += int64(n)
	c.onSent(c.at, c.total)
	return n, err
}
