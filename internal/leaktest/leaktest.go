// Package leaktest names, once and with the reason, the library goroutines
// that outlive a test by design, for the goleak check every package that
// starts goroutines runs in its TestMain:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(m, leaktest.FastHTTP...) }
//
// A package adds only the lists for libraries it runs; everything else a test
// leaves running fails the package.
package leaktest

import "go.uber.org/goleak"

// FastHTTP is for packages that serve through Fiber (fasthttp underneath).
var FastHTTP = []goleak.Option{
	// fasthttp starts one package-level goroutine, the first time a server
	// answers, that refreshes the Date header every second for the life of
	// the process; nothing can stop it.
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.updateServerDate.func1"),
	// Each server's idle-worker cleaner sees the server stop only after its
	// current sleep (MaxIdleWorkerDuration, 10 s, which Fiber does not let us
	// set), so it outlives a shut-down server by up to 10 s. A server a test
	// never shuts down still fails the check: its accept loop is left running.
	goleak.IgnoreAnyFunction("github.com/valyala/fasthttp.(*workerPool).Start.func2"),
}

// Redis is for packages whose tests stop a Redis their clients use.
var Redis = []goleak.Option{
	// A go-redis pool whose dial failed retries it from a goroutine that
	// sleeps a second between tries and sees the pool closed only when it
	// wakes: it outlives a closed client by up to that second. (The edge's
	// auto-pipelined rate limiter dials from a pool of its own.)
	goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"),
}
