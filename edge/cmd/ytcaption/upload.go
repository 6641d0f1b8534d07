package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"
)

// maxUploadBytes is the largest file the edge's OpenAI-compatible upload
// route takes (its gate.MaxUploadBytes, OpenAI's limit).
const maxUploadBytes = 25 << 20

// uploadPollEvery is how often the job list is read while an upload runs.
const uploadPollEvery = 250 * time.Millisecond

// upload sends a local file with tus (resumable, of any size the server
// takes) and makes a job of it. A server without /v1/uploads gets the file
// through the OpenAI-compatible route instead, if it is small enough.
// Ctrl-C stops the upload; the same command later resumes it.
// jobOptions are the options an uploaded file's job takes.
type jobOptions struct {
	language, prompt, task, webhook string
	vocabulary                      []string
	guards                          map[string]bool // nil: the server's default
	speakers                        bool
	minSpeakers, maxSpeakers        int
}

func upload(ctx context.Context, cl *client, path string, o jobOptions, e env) (*job, error) {
	name := filepath.Base(path)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	p := newProgress(e.stderr, e.stderrTTY, false, e.stderrWidth, time.Now)
	u := newUploader(cl, e.getenv, func(sent, total int64) { p.transfer(name, sent, total) })
	uctx, stop := onInterrupt(ctx, e, p.tick)
	id, key, err := u.upload(uctx, path)
	wasInterrupted := stop()
	p.done()
	switch {
	case wasInterrupted:
		return nil, &uploadPaused{name}
	case errors.Is(err, errNoTus):
		if fi.Size() > maxUploadBytes {
			return nil, fmt.Errorf("%s is %d MiB; this server has no resumable uploads and takes files of at most %d MiB (serve it over HTTP and give its URL)",
				name, fi.Size()>>20, maxUploadBytes>>20)
		}
		if o.task != "transcribe" || o.webhook != "" || len(o.vocabulary) > 0 || o.guards != nil || o.speakers {
			// The OpenAI route has none of them; better said than dropped.
			return nil, usagef("transcribe: this server has no resumable uploads, and its older upload route takes no --task, --webhook-url, --vocabulary, --guards or --speakers")
		}
		return uploadOpenAI(ctx, cl, path, o.language, o.prompt, e)
	case err != nil:
		return nil, fmt.Errorf("upload %s: %w", name, err)
	}
	body := map[string]any{"upload_id": id}
	if o.language != "auto" {
		body["language"] = o.language
	}
	for k, v := range map[string]string{"prompt": o.prompt, "webhook_url": o.webhook} {
		if v != "" {
			body[k] = v
		}
	}
	if o.task != "transcribe" {
		body["task"] = o.task
	}
	if len(o.vocabulary) > 0 {
		body["vocabulary"] = o.vocabulary
	}
	if o.guards != nil {
		body["guards"] = o.guards
	}
	speakerFields(body, o.speakers, o.minSpeakers, o.maxSpeakers)
	// One key per upload: a run that dies between the job's creation and
	// forgetting the upload makes the same job again, not a second one.
	j := new(job)
	if _, err := cl.call(ctx, http.MethodPost, "/v1/jobs", body, http.Header{"Idempotency-Key": {"cli-upload-" + id}}, j); err != nil {
		return nil, err
	}
	u.forget(key)
	return j, nil
}

// onInterrupt returns ctx, cancelled on Ctrl-C, and stop, which ends the
// watch and says whether Ctrl-C came. tick runs every redrawEvery
// meanwhile, so a progress line keeps moving.
func onInterrupt(ctx context.Context, e env, tick func()) (context.Context, func() bool) {
	ictx, cancel := context.WithCancel(ctx)
	var hit atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		clock := time.NewTicker(redrawEvery)
		defer clock.Stop()
		for {
			select {
			case <-e.interrupts:
				hit.Store(true)
				cancel()
				return
			case <-clock.C:
				tick()
			case <-ictx.Done():
				return
			}
		}
	}()
	return ictx, func() bool {
		cancel()
		<-done
		return hit.Load()
	}
}

// uploadOpenAI sends a local file through the edge's older upload route,
// OpenAI's POST /v1/audio/transcriptions, and returns the job it made. That route
// answers only once the job has ended, so while it runs the job list is
// read for the new job named "upload:<file name>" — one that was not there
// before — and the upload call is let go once it shows: the job runs on in
// core, and the caller follows it like any other. Two uploads of files of
// the same name by one key at the same moment may each find the other's.
func uploadOpenAI(ctx context.Context, cl *client, path, language, prompt string, e env) (*job, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(path)
	before, err := uploadJobs(ctx, cl, name)
	if err != nil {
		return nil, err
	}
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, err := mw.CreateFormFile("file", name)
	if err != nil {
		return nil, err
	}
	if _, err := fw.Write(data); err != nil {
		return nil, err
	}
	if language != "auto" {
		_ = mw.WriteField("language", language)
	}
	if prompt != "" {
		_ = mw.WriteField("prompt", prompt)
	}
	_ = mw.WriteField("response_format", "json")
	if err := mw.Close(); err != nil {
		return nil, err
	}

	fmt.Fprintf(e.stderr, "uploading %s (%.1f MiB)\n", name, float64(len(data))/(1<<20))
	uctx, stop := context.WithCancel(ctx)
	defer stop()
	sent := make(chan error, 1)
	go func() {
		// Not retried: an upload is not idempotent. Its answer is not
		// needed: the job is read from the list.
		resp, err := cl.send(uctx, http.MethodPost, "/v1/audio/transcriptions", body.Bytes(),
			http.Header{"Content-Type": {mw.FormDataContentType()}})
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		sent <- err
	}()
	poll := time.NewTicker(uploadPollEvery)
	defer poll.Stop()
	for {
		var done bool
		select {
		case err := <-sent:
			if err != nil && ctx.Err() == nil {
				var ae *apiError
				if !errors.As(err, &ae) || ae.Status < 500 {
					return nil, fmt.Errorf("upload %s: %w", name, err)
				}
				// A 5xx after the job was made (the wait broke): look for it.
			}
			done = true
		case <-poll.C:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		now, err := uploadJobs(ctx, cl, name)
		if err != nil {
			return nil, err
		}
		for _, j := range now {
			if _, old := before[j.ID]; !old {
				return j, nil
			}
		}
		if done {
			return nil, fmt.Errorf("upload %s: the server made no job of it", name)
		}
	}
}

// uploadJobs are the newest of the caller's jobs that are uploads of a
// file named name, by id.
func uploadJobs(ctx context.Context, cl *client, name string) (map[string]*job, error) {
	var page struct {
		Jobs []*job `json:"jobs"`
	}
	if _, err := cl.call(ctx, http.MethodGet, "/v1/jobs?limit=20", nil, nil, &page); err != nil {
		return nil, err
	}
	jobs := map[string]*job{}
	for _, j := range page.Jobs {
		if j.URL == "upload:"+name {
			jobs[j.ID] = j
		}
	}
	return jobs, nil
}
