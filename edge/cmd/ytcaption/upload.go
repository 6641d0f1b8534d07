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
	"time"
)

// maxUploadBytes is the largest file the edge's upload route takes (its
// gate.MaxUploadBytes, OpenAI's limit).
const maxUploadBytes = 25 << 20

// uploadPollEvery is how often the job list is read while an upload runs.
const uploadPollEvery = 250 * time.Millisecond

// upload sends a local file through the edge's one upload route, OpenAI's
// POST /v1/audio/transcriptions, and returns the job it made. That route
// answers only once the job has ended, so while it runs the job list is
// read for the new job named "upload:<file name>" — one that was not there
// before — and the upload call is let go once it shows: the job runs on in
// core, and the caller follows it like any other. Two uploads of files of
// the same name by one key at the same moment may each find the other's.
func upload(ctx context.Context, cl *client, path, language, prompt string, e env) (*job, error) {
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
