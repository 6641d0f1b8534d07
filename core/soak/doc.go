// Package soak holds ytcaption's soak test: the production topology — the
// real binaries of core, an edge and three gpu-nodes (the openai engine
// against a local stand-in) on a private PostgreSQL cluster, MinIO and
// Redis, as the chaos suite (core/chaos) runs them — under a steady load
// through the edge for a long time, at half the capacity it measures first:
// job creations, reads, event streams (some left early), transcripts in
// every format, deliberate cancellations. Every 10 s it samples each
// process's resident memory (/proc/PID/status VmRSS), goroutines (its
// /metrics go_goroutines) and open file descriptors (/proc/PID/fd), and it
// fails if any of them grows linearly — a least-squares slope over the last
// two thirds of the run above a limit — or if any request fails. It writes
// samples.csv, soak.png (drawn by the test itself) and summary.txt.
//
// `make soak` runs it for an hour, `make soak-short` for 10 minutes;
// without YTCAPTION_SOAK_DURATION it is skipped, so `go test ./...` and CI
// never run it. docs/soak.md explains the limits and shows a run's report.
package soak
