package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ytcaption/ytcaption/internal/backoff"
)

// job is the REST API's job, as much of it as the client shows.
type job struct {
	ID         string  `json:"id"`
	Status     string  `json:"status"`
	URL        string  `json:"url"`
	Language   string  `json:"language"`
	Progress   float64 `json:"progress"`
	Attempt    int     `json:"attempt"`
	CreatedAt  string  `json:"created_at"`
	FinishedAt string  `json:"finished_at"`
	Media      *struct {
		Title    string  `json:"title"`
		Duration float64 `json:"duration_seconds"`
	} `json:"media"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	// The names given to the job's speakers (ytcaption speakers rename).
	SpeakerNames map[string]string `json:"speaker_names"`
	raw          json.RawMessage   // the server's whole object, for --json
}

func (j *job) UnmarshalJSON(b []byte) error {
	type plain job
	if err := json.Unmarshal(b, (*plain)(j)); err != nil {
		return err
	}
	j.raw = append(json.RawMessage(nil), b...)
	return nil
}

func (j *job) finished() bool {
	return j.Status == "succeeded" || j.Status == "failed" || j.Status == "cancelled"
}

type segment struct {
	Seq     int    `json:"seq"`
	StartMS int64  `json:"start_ms"`
	EndMS   int64  `json:"end_ms"`
	Text    string `json:"text"`
}

// apiError is a refusal from the server, with its machine-readable code.
type apiError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter time.Duration
}

func (e *apiError) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// networkError is a server that could not be reached, or never answered.
type networkError struct {
	base string // the server, when it could not be reached at all
	err  error
}

func (e *networkError) Error() string {
	if e.base == "" {
		return e.err.Error()
	}
	return fmt.Sprintf("cannot reach ytcaption at %s: %s — is it running? (make run) — or check the URL: YTCAPTION_URL, or ytcaption login --url", e.base, reason(e.err))
}
func (e *networkError) Unwrap() error { return e.err }

// reason is the innermost cause of a failed connection, as short as the
// system says it ("connection refused"), without Go's request wrapping.
func reason(err error) string {
	var dns *net.DNSError
	var sys *os.SyscallError
	var ue *url.Error
	switch {
	case errors.As(err, &dns):
		return dns.Err + " " + dns.Name
	case errors.As(err, &sys):
		return sys.Err.Error()
	case errors.As(err, &ue):
		return ue.Err.Error()
	}
	return err.Error()
}

// notEdgeError is a server that answered, but not as an edge does: most
// often core's port, given for the edge's.
type notEdgeError struct{ base string }

func (e *notEdgeError) Error() string {
	return fmt.Sprintf("%s is not a ytcaption edge: it has no /v1/jobs (core's port? the REST API is the edge's URL, %s under make run)", e.base, defaultURL)
}

// client speaks the edge's public REST API.
type client struct {
	base, key string
	hc        *http.Client
	tries     int // for calls that are safe to repeat
}

func newClient(base, key string) *client {
	return &client{base: strings.TrimSuffix(base, "/"), key: key, hc: &http.Client{}, tries: 5}
}

// retryable says whether a failed call may be repeated: the server was
// unreachable, overloaded or limiting us.
func retryable(err error) bool {
	var ne *networkError
	var ae *apiError
	switch {
	case errors.As(err, &ne):
		return true
	case errors.As(err, &ae):
		return ae.Status == http.StatusTooManyRequests || ae.Status == http.StatusBadGateway ||
			ae.Status == http.StatusServiceUnavailable || ae.Status == http.StatusGatewayTimeout
	}
	return false
}

// call sends a request and decodes a 2xx JSON answer into out (nil: the raw
// body is returned). Every call here is safe to repeat — reads, cancels, and
// creations under an Idempotency-Key — so failures worth retrying are
// retried with backoff, honouring Retry-After.
func (c *client) call(ctx context.Context, method, path string, body any, header http.Header, out any) ([]byte, error) {
	var payload []byte
	if body != nil {
		var err error
		if payload, err = json.Marshal(body); err != nil {
			return nil, err
		}
	}
	for attempt := 1; ; attempt++ {
		b, err := c.once(ctx, method, path, payload, header, out)
		if err == nil || !retryable(err) || attempt >= c.tries || ctx.Err() != nil {
			return b, err
		}
		wait := backoff.Full(attempt, 250*time.Millisecond, 5*time.Second)
		var ae *apiError
		if errors.As(err, &ae) && ae.RetryAfter > 0 {
			wait = ae.RetryAfter
		}
		backoff.Sleep(ctx, wait)
	}
}

func (c *client) once(ctx context.Context, method, path string, payload []byte, header http.Header, out any) ([]byte, error) {
	resp, err := c.send(ctx, method, path, payload, header)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, &networkError{err: err}
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return nil, fmt.Errorf("the server's answer is not the JSON expected: %w", err)
		}
	}
	return b, nil
}

// send makes one request and turns any non-2xx answer into an apiError.
func (c *client) send(ctx context.Context, method, path string, payload []byte, header http.Header) (*http.Response, error) {
	var rd io.Reader
	if payload != nil {
		rd = bytes.NewReader(payload)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if payload != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return c.do(req)
}

// do sends req with the key and turns any non-2xx answer into an apiError.
func (c *client) do(req *http.Request) (*http.Response, error) {
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("User-Agent", "ytcaption/"+version)
	resp, err := c.hc.Do(req)
	if err != nil {
		if err := req.Context().Err(); err != nil {
			return nil, err
		}
		return nil, &networkError{c.base, err}
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	ae := &apiError{Status: resp.StatusCode, Code: "http_" + strconv.Itoa(resp.StatusCode), Message: strings.TrimSpace(string(b))}
	var e struct {
		Error struct{ Code, Message string }
	}
	if json.Unmarshal(b, &e) == nil && e.Error.Code != "" {
		ae.Code, ae.Message = e.Error.Code, e.Error.Message
	} else if resp.StatusCode == http.StatusNotFound {
		// The edge answers every 404 in its JSON shape; core's port, or
		// any other web server, does not.
		return nil, &notEdgeError{c.base}
	}
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		ae.RetryAfter = time.Duration(s) * time.Second
	}
	return nil, ae
}

// events follows a job's Server-Sent Events until its terminal "job" event,
// reconnecting with Last-Event-ID when the stream breaks, so no segment is
// missed or repeated. onJob and onSegment see every event in order. lastID
// is where the stream resumes ("": from the start), kept up to date so that
// a later call picks up where this one stopped.
func (c *client) events(ctx context.Context, id string, lastID *string, onJob func(*job), onSegment func(segment)) (*job, error) {
	failures := 0
	for {
		last, err := c.stream(ctx, id, lastID, onJob, onSegment)
		if last != nil && last.finished() {
			return last, nil
		}
		if last != nil {
			failures = 0 // the stream made progress before it broke
		}
		if err == nil {
			err = &networkError{err: errors.New("the event stream ended before the job did")}
		}
		failures++
		if !retryable(err) || failures >= c.tries || ctx.Err() != nil {
			return nil, err
		}
		backoff.Sleep(ctx, backoff.Full(failures, 250*time.Millisecond, 5*time.Second))
	}
}

// stream reads one connection's events; it returns the last job seen.
func (c *client) stream(ctx context.Context, id string, lastID *string, onJob func(*job), onSegment func(segment)) (*job, error) {
	h := http.Header{"Accept": {"text/event-stream"}}
	if *lastID != "" {
		h.Set("Last-Event-ID", *lastID)
	}
	resp, err := c.send(ctx, http.MethodGet, "/v1/jobs/"+id+"/events", nil, h)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var last *job
	var evID, event string
	var data strings.Builder
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data.Len() > 0 {
				switch event {
				case "job":
					var j job
					if err := json.Unmarshal([]byte(data.String()), &j); err != nil {
						return last, fmt.Errorf("a job event is not JSON: %w", err)
					}
					last = &j
					onJob(&j)
				case "segment":
					var s segment
					if err := json.Unmarshal([]byte(data.String()), &s); err != nil {
						return last, fmt.Errorf("a segment event is not JSON: %w", err)
					}
					onSegment(s)
				}
				if evID != "" {
					*lastID = evID
				}
			}
			evID, event = "", ""
			data.Reset()
		case strings.HasPrefix(line, ":"): // a keep-alive comment
		case strings.HasPrefix(line, "id:"):
			evID = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "event:"):
			event = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			if data.Len() > 0 {
				data.WriteByte('\n')
			}
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		if ctx.Err() != nil {
			return last, ctx.Err()
		}
		return last, &networkError{err: err}
	}
	return last, nil
}
