// Package settings holds core's dynamic settings: what an operator may change
// on a running deployment without a restart, through Consul's KV store. The
// layout, one key per setting under ytcaption/core/:
//
//	ytcaption/core/intake        "open" or "paused": paused refuses new jobs (503 intake_paused); running ones go on
//	ytcaption/core/create_rate   job creations per second per API key, for plans that set none (--create-rate)
//	ytcaption/core/create_burst  (--create-burst)
//	ytcaption/core/read_rate     other calls per second per API key, for plans that set none (--read-rate)
//	ytcaption/core/read_burst    (--read-burst)
//	ytcaption/core/max_attempts  attempts per stage for new jobs (--max-attempts)
//
// A key that is absent, or holds something that does not parse, leaves the
// flag's value in force (the latter is logged). Every replica watches the
// prefix with blocking queries, so a change applies within a second or so;
// while Consul is unreachable the last values stay.
package settings

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/consul/api"

	"github.com/ytcaption/ytcaption/internal/backoff"
	"github.com/ytcaption/ytcaption/internal/discovery"
)

// Prefix is where core's settings live in Consul's KV store.
const Prefix = "ytcaption/core/"

// Settings are the values in force.
type Settings struct {
	IntakePaused            bool
	CreateRate, CreateBurst int
	ReadRate, ReadBurst     int
	MaxAttempts             int
}

// Source gives the settings in force now.
type Source struct {
	cur atomic.Pointer[Settings]
}

// Static is a Source that always gives s: core without Consul.
func Static(s Settings) *Source {
	src := &Source{}
	src.cur.Store(&s)
	return src
}

// Get returns the settings in force.
func (s *Source) Get() Settings { return *s.cur.Load() }

// Watch returns a Source that starts at base (the flags) and follows the
// keys under Prefix in the Consul agent at addr until ctx ends.
func Watch(ctx context.Context, log *slog.Logger, addr string, base Settings) (*Source, error) {
	c, err := discovery.Client(addr)
	if err != nil {
		return nil, err
	}
	src := Static(base)
	go src.follow(ctx, log, c.KV(), base)
	return src, nil
}

// follow runs blocking list queries on the prefix. Per Consul's docs on
// blocking queries: wait on the last X-Consul-Index; an index that goes
// backwards (a snapshot restore, a new cluster) starts over from 0.
func (s *Source) follow(ctx context.Context, log *slog.Logger, kv *api.KV, base Settings) {
	var index uint64
	failures := 0
	for ctx.Err() == nil {
		pairs, meta, err := kv.List(Prefix, (&api.QueryOptions{WaitIndex: index, WaitTime: 5 * time.Minute}).WithContext(ctx))
		if err != nil {
			if ctx.Err() == nil {
				failures++
				log.WarnContext(ctx, "consul settings: keeping the last values", "err", err)
				backoff.Sleep(ctx, backoff.Full(failures, time.Second, 30*time.Second))
			}
			continue
		}
		failures = 0
		if meta.LastIndex < index {
			index = 0
			continue
		}
		if meta.LastIndex == index {
			continue // the wait timed out with no change
		}
		index = meta.LastIndex
		next := Parse(log, base, pairs)
		if prev := s.Get(); prev != next {
			log.InfoContext(ctx, "consul settings applied", "intake_paused", next.IntakePaused, "create_rate", next.CreateRate,
				"create_burst", next.CreateBurst, "read_rate", next.ReadRate, "read_burst", next.ReadBurst, "max_attempts", next.MaxAttempts)
		}
		s.cur.Store(&next)
	}
}

// Parse applies the KV pairs over base.
func Parse(log *slog.Logger, base Settings, pairs api.KVPairs) Settings {
	out := base
	positive := map[string]*int{
		"create_rate": &out.CreateRate, "create_burst": &out.CreateBurst, "read_rate": &out.ReadRate,
		"read_burst": &out.ReadBurst, "max_attempts": &out.MaxAttempts,
	}
	for _, p := range pairs {
		name, v := strings.TrimPrefix(p.Key, Prefix), strings.TrimSpace(string(p.Value))
		if dst, ok := positive[name]; ok {
			if n, err := strconv.Atoi(v); err == nil && n > 0 {
				*dst = n
				continue
			}
		} else if name == "intake" && (v == "open" || v == "paused") {
			out.IntakePaused = v == "paused"
			continue
		} else if name == "" {
			continue // the folder itself
		}
		log.Warn("consul settings: ignoring a key", "key", p.Key, "value", v)
	}
	return out
}
