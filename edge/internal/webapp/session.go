package webapp

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/ytcaption/ytcaption/internal/breaker"
)

// ErrNoSession means the cookie names no live session: never issued,
// forged, expired or signed out.
var ErrNoSession = errors.New("no such session")

// Session is what a signed-in browser's cookie stands for.
type Session struct {
	Key     string    `json:"k"` // the API key the person signed in with
	CSRF    string    `json:"c"` // sent back in the X-CSRF-Token header of every unsafe request
	Created time.Time `json:"t"`
}

// sessions keeps sessions in Redis, shared by every edge, or — without
// Redis (a single box) — in this edge's memory.
//
// The cookie is 256 random bits. The store is keyed by the cookie's SHA-256
// and holds the record sealed (AES-256-GCM) under a key derived from the
// cookie itself, so neither a copy of Redis nor a stolen store key yields an
// API key or a usable cookie: only the browser holds what opens its record.
type sessions struct {
	rdb *redis.Client // nil: memory
	br  *breaker.Breaker
	ttl time.Duration
	now func() time.Time

	mu  sync.Mutex
	mem map[string]memEntry
	max int // sessions kept in memory at once
}

type memEntry struct {
	sealed  []byte
	expires time.Time
}

const redisPrefix = "ytcaption:web:session:"

func newSessions(rdb *redis.Client, br *breaker.Breaker, ttl time.Duration) *sessions {
	return &sessions{rdb: rdb, br: br, ttl: ttl, now: time.Now, mem: map[string]memEntry{}, max: 100_000}
}

// id is the store's name for a cookie, and seal the key its record is
// sealed with: two one-way functions of the cookie, apart by domain.
func derive(cookie string) (id string, seal []byte) {
	a := sha256.Sum256([]byte("ytcaption web session id\x00" + cookie))
	b := sha256.Sum256([]byte("ytcaption web session seal\x00" + cookie))
	return hex.EncodeToString(a[:]), b[:]
}

func randomToken() string { return base64.RawURLEncoding.EncodeToString(randomBytes(32)) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return b
}

// create stores a new session for key and returns its cookie value.
func (s *sessions) create(ctx context.Context, key string) (cookie string, sess Session, err error) {
	cookie = randomToken()
	sess = Session{Key: key, CSRF: randomToken(), Created: s.now().UTC()}
	id, k := derive(cookie)
	plain, err := json.Marshal(sess)
	if err != nil {
		return "", Session{}, err
	}
	sealed, err := sealWith(k, plain)
	if err != nil {
		return "", Session{}, err
	}
	if s.rdb == nil {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.sweep()
		if len(s.mem) >= s.max {
			return "", Session{}, errors.New("too many sessions on this edge")
		}
		s.mem[id] = memEntry{sealed: sealed, expires: s.now().Add(s.ttl)}
		return cookie, sess, nil
	}
	if err := s.br.Do(func() error { return s.rdb.Set(ctx, redisPrefix+id, sealed, s.ttl).Err() }); err != nil {
		return "", Session{}, fmt.Errorf("store session: %w", err)
	}
	return cookie, sess, nil
}

// get opens the session cookie names: ErrNoSession if none lives.
func (s *sessions) get(ctx context.Context, cookie string) (Session, error) {
	if len(cookie) != 43 { // 32 bytes, base64url: anything else was never issued
		return Session{}, ErrNoSession
	}
	id, k := derive(cookie)
	var sealed []byte
	if s.rdb == nil {
		s.mu.Lock()
		e, ok := s.mem[id]
		s.mu.Unlock()
		if !ok || !s.now().Before(e.expires) {
			return Session{}, ErrNoSession
		}
		sealed = e.sealed
	} else {
		err := s.br.Do(func() error {
			var err error
			sealed, err = s.rdb.Get(ctx, redisPrefix+id).Bytes()
			if errors.Is(err, redis.Nil) {
				return nil // an answer, not a failure of Redis
			}
			return err
		})
		if err != nil {
			return Session{}, fmt.Errorf("read session: %w", err)
		}
		if sealed == nil {
			return Session{}, ErrNoSession
		}
	}
	plain, err := openWith(k, sealed)
	if err != nil {
		return Session{}, ErrNoSession
	}
	var sess Session
	if err := json.Unmarshal(plain, &sess); err != nil {
		return Session{}, ErrNoSession
	}
	return sess, nil
}

// remove ends the session cookie names, on every edge.
func (s *sessions) remove(ctx context.Context, cookie string) error {
	id, _ := derive(cookie)
	if s.rdb == nil {
		s.mu.Lock()
		delete(s.mem, id)
		s.mu.Unlock()
		return nil
	}
	if err := s.br.Do(func() error { return s.rdb.Del(ctx, redisPrefix+id).Err() }); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// sweep drops expired sessions from memory; s.mu is held.
func (s *sessions) sweep() {
	if len(s.mem) < s.max/2 {
		return
	}
	now := s.now()
	for id, e := range s.mem {
		if !now.Before(e.expires) {
			delete(s.mem, id)
		}
	}
}

func sealWith(key, plain []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	nonce := randomBytes(gcm.NonceSize())
	return gcm.Seal(nonce, nonce, plain, nil), nil
}

func openWith(key, sealed []byte) ([]byte, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < gcm.NonceSize() {
		return nil, errors.New("sealed session too short")
	}
	return gcm.Open(nil, sealed[:gcm.NonceSize()], sealed[gcm.NonceSize():], nil)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// CSRFMatches says whether sent is the session's token, in constant time.
func CSRFMatches(want, sent string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(want), []byte(sent)) == 1
}
