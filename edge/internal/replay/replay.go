// Package replay is the edge's fast half of Idempotency-Key: in Redis, the
// response each key got (kept 24 h, replayed to a retry with the same
// parameters) and a lock while the first request is in flight (a duplicate
// meanwhile hears 409). Core holds the durable half: the key is recorded in
// core's database (PostgreSQL, or the single box's SQLite) in the job's own
// transaction, so when Redis is down or was flushed a retry still finds its
// job and no duplicate is ever created; Redis only makes the answer fast and
// exact. Without Redis (a single box) the copies
// and locks live in the edge's memory with the same rules and lifetimes.
package replay

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ytcaption/ytcaption/internal/breaker"
)

// Response is a stored reply, in the form each transport sends it.
type Response struct {
	Fingerprint []byte `json:"f"`
	Status      int    `json:"s"`           // REST status
	Body        []byte `json:"b"`           // REST body
	Proto       []byte `json:"p,omitempty"` // the Connect message, binary protobuf
}

// Outcome says what to do with a request carrying a key.
type Outcome int

const (
	Proceed  Outcome = iota // first use (or Redis cannot tell): run it, then Finish
	Replay                  // answered before with these parameters: send the stored reply
	Mismatch                // answered before with other parameters: 422
	InUse                   // the first request with this key is still running: 409
)

// Store keeps replay copies and locks in Redis.
type Store struct {
	rdb     *redis.Client // nil: no Redis, the copies live in mem
	mem     *memory
	breaker *breaker.Breaker
	ttl     time.Duration // how long replies are kept
	lockTTL time.Duration // outlives the longest call to core
	timeout time.Duration
}

// New returns a store on rdb (nil: none), its calls guarded by br.
func New(rdb *redis.Client, br *breaker.Breaker) *Store {
	s := &Store{rdb: rdb, breaker: br, ttl: 24 * time.Hour, lockTTL: 35 * time.Second, timeout: 250 * time.Millisecond}
	if rdb == nil {
		s.mem = &memory{now: time.Now, replies: map[string]memEntry{}, locks: map[string]memEntry{}}
	}
	return s
}

// Lock is held by the request that proceeds; Finish releases it.
type Lock struct {
	s          *Store
	key, token string
}

// redisKey scopes the client's key to its owner; hashing bounds its length.
func redisKey(scope, key string) string {
	h := sha256.Sum256([]byte(scope + "\x00" + key))
	return "idem:" + hex.EncodeToString(h[:16])
}

// Begin looks the key up and, when it is new, locks it. A Redis failure
// answers Proceed without a lock: core alone still guarantees one job.
func (s *Store) Begin(ctx context.Context, scope, key string, fingerprint []byte) (Outcome, *Response, *Lock) {
	k := redisKey(scope, key)
	if s.rdb == nil {
		return s.mem.begin(s, k, fingerprint)
	}
	out, stored, lock := Proceed, (*Response)(nil), (*Lock)(nil)
	err := s.breaker.Do(func() error {
		ctx, cancel := context.WithTimeout(ctx, s.timeout)
		defer cancel()
		r, err := s.get(ctx, k)
		if err != nil || r != nil {
			out, stored = compare(r, fingerprint)
			return err
		}
		token := rand.Text()
		ok, err := s.rdb.SetNX(ctx, k+":lock", token, s.lockTTL).Result()
		if err != nil {
			return err
		}
		if ok {
			lock = &Lock{s: s, key: k, token: token}
			return nil
		}
		// Another request holds the key; it may have finished just now.
		if r, err = s.get(ctx, k); err != nil || r != nil {
			out, stored = compare(r, fingerprint)
			return err
		}
		out = InUse
		return nil
	})
	if err != nil {
		return Proceed, nil, nil
	}
	return out, stored, lock
}

func compare(r *Response, fingerprint []byte) (Outcome, *Response) {
	if r == nil {
		return Proceed, nil
	}
	if string(r.Fingerprint) != string(fingerprint) {
		return Mismatch, r
	}
	return Replay, r
}

func (s *Store) get(ctx context.Context, k string) (*Response, error) {
	b, err := s.rdb.Get(ctx, k).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var r Response
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, nil // unreadable: as if absent; core still knows the key
	}
	return &r, nil
}

// unlock deletes the lock only if it is still ours.
var unlock = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// Finish stores r as the key's reply (nil: store nothing — the request failed
// and may be retried) and releases the lock. Safe on a nil Lock.
func (l *Lock) Finish(ctx context.Context, r *Response) {
	if l == nil {
		return
	}
	if l.s.rdb == nil {
		l.s.mem.finish(l, r)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.s.timeout)
	defer cancel()
	_ = l.s.breaker.Do(func() error {
		if r != nil {
			b, _ := json.Marshal(r)
			if err := l.s.rdb.Set(ctx, l.key, b, l.s.ttl).Err(); err != nil {
				return err
			}
		}
		return unlock.Run(ctx, l.s.rdb, []string{l.key + ":lock"}, l.token).Err()
	})
}

// memory is the replay store without Redis: one edge's map, expiring like
// the Redis keys.
type memory struct {
	now       func() time.Time
	mu        sync.Mutex
	replies   map[string]memEntry // key → reply
	locks     map[string]memEntry // key → lock token
	nextSweep time.Time
}

type memEntry struct {
	resp    *Response
	token   string
	expires time.Time
}

func (m *memory) begin(s *Store, k string, fingerprint []byte) (Outcome, *Response, *Lock) {
	m.mu.Lock()
	defer m.mu.Unlock()
	now := m.now()
	if now.After(m.nextSweep) { // drop what has expired, once a minute
		for _, tbl := range []map[string]memEntry{m.replies, m.locks} {
			for key, e := range tbl {
				if now.After(e.expires) {
					delete(tbl, key)
				}
			}
		}
		m.nextSweep = now.Add(time.Minute)
	}
	if e, ok := m.replies[k]; ok && now.Before(e.expires) {
		out, r := compare(e.resp, fingerprint)
		return out, r, nil
	}
	if e, ok := m.locks[k]; ok && now.Before(e.expires) {
		return InUse, nil, nil
	}
	token := rand.Text()
	m.locks[k] = memEntry{token: token, expires: now.Add(s.lockTTL)}
	return Proceed, nil, &Lock{s: s, key: k, token: token}
}

func (m *memory) finish(l *Lock, r *Response) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r != nil {
		m.replies[l.key] = memEntry{resp: r, expires: m.now().Add(l.s.ttl)}
	}
	if m.locks[l.key].token == l.token {
		delete(m.locks, l.key)
	}
}
