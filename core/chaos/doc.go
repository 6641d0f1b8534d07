// Package chaos holds ytcaption's chaos suite: the real binaries — core, an
// edge and three gpu-nodes — on a private PostgreSQL cluster and a real MinIO,
// under injected faults each round: kill -9 a gpu-node mid-job, SIGSTOP one
// past its lease and resume it (its late writes must be refused), restart core
// mid-flight, restart Postgres the rude way (immediate shutdown), stop the
// edge's Redis for a few seconds. It checks
// that every accepted job succeeds exactly once with a whole transcript from
// one lease, that no request fails while Redis is down, and prints jobs
// submitted, succeeded, lost, finalised twice, late writes refused, and
// p50/p99 time to resume after each kind of fault.
//
// `make test` runs a short version (40 jobs, one round, about 30 s);
// `make chaos` runs 200 jobs through three rounds. YTCAPTION_CHAOS_JOBS and
// YTCAPTION_CHAOS_ROUNDS set the sizes. The gpu-nodes use the openai engine
// against a local stand-in that answers after 700 ms: the suite exercises the
// control plane, not speech recognition.
package chaos
