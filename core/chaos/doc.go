// Package chaos holds ytcaption's chaos suite: the real binaries — two core
// replicas, an edge and three gpu-nodes — on a private PostgreSQL cluster, a
// real MinIO and Redis, with every link to core through a fault proxy
// (faultproxy_test.go: a TCP proxy that balances over the replicas that pass
// a health check, and slows, blackholes or cuts its link on demand) and the
// work directories on a small tmpfs. Each round throws:
//
//   - kill -9 a gpu-node mid-job; SIGSTOP one past its lease (its late writes
//     must be refused);
//   - kill -9 the core replica that leads; SIGTERM one; SIGSTOP one past a lease;
//   - Postgres restarted the rude way, unreachable for a while
//     (YTCAPTION_CHAOS_OUTAGE_SECONDS), and failed over to another address
//     (core's URL names both, as a client of a primary and standby does);
//   - Redis stopped (the edge must limit rates in process and fail nothing);
//   - MinIO stopped, and paused;
//   - the disk under core's and the gpu-nodes' work directories filled to
//     ENOSPC (needs root to mount the tmpfs; elsewhere the suite says so);
//   - one gpu-node's link slowed by 300 ms, blackholed (half-open: no
//     answer, no error) past a lease, and cut past a lease; the edge's link
//     to core blackholed.
//
// Then it checks, from the database, that every accepted job succeeded
// exactly once (one webhook in the outbox per job: the trigger that
// finalises a job writes it), with a whole transcript from one lease, that
// no job a faulted node held ended under its stale lease, that no request
// failed while Redis was down, and that nothing was left behind: no file in
// a work directory, no blob no job names. It prints those counts and the
// p50/p99 time to resume after each kind of fault.
//
// `make test` runs a short version (40 jobs, one round, 10 s outage, about
// 2.5 minutes); `make chaos` runs 1000 jobs through three rounds with a 60 s
// outage. YTCAPTION_CHAOS_JOBS and YTCAPTION_CHAOS_ROUNDS set the sizes. The
// gpu-nodes use the openai engine against a local stand-in that answers
// after 700 ms: the suite exercises the control plane, not speech
// recognition.
package chaos
