package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"net"
	"sync"
	"time"
)

// failCache remembers, for a short while, the (client address, user,
// password) triples that just failed, so that a client repeating the same
// wrong login (a flood, a script in a retry loop) is answered 401 at once
// instead of paying a PBKDF2 run per request and taking the slots a valid
// login needs (issue 10: 1,000 wrong-password requests at 200 concurrency
// must leave valid logins answered within a second).
//
// What it may leak is bounded to what the asker already knows: entries are
// keyed by the client's own address, so a fast 401 only says "you sent
// this and it failed", never anything about another client's attempts
// (a typo of the real password by its owner stays invisible). Only
// failures are cached: a success always pays the full check. The key is
// an HMAC under a per-process random key, so memory holds no password or
// fast unsalted hash of one. Entries expire after failTTL; the store is
// immutable for a guest's life (the users image), so a cached failure
// cannot turn into a success meanwhile.
//
// Identical triples in flight are coalesced: while one request checks a
// triple, its twins wait for that answer instead of each queueing for a
// PBKDF2 slot (the first wave of a flood is all misses).
type failCache struct {
	mu       sync.Mutex
	key      [32]byte
	entries  map[[32]byte]time.Time // expiry
	inflight map[[32]byte]chan struct{}
	now      func() time.Time
}

const (
	failTTL     = time.Minute
	failEntries = 4096 // bounded: a client varying passwords fills it, then the oldest go
)

func newFailCache() *failCache {
	c := &failCache{entries: make(map[[32]byte]time.Time), inflight: make(map[[32]byte]chan struct{}), now: time.Now}
	if _, err := rand.Read(c.key[:]); err != nil {
		// crypto/rand does not fail on Linux ≥ 3.17 (getrandom); without
		// a key the cache would be guessable, so it stays off.
		return nil
	}
	return c
}

func (c *failCache) id(remote, user, password string) [32]byte {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	m := hmac.New(sha256.New, c.key[:])
	for _, s := range []string{host, user, password} {
		m.Write([]byte(s))
		m.Write([]byte{0}) // no ambiguity between ("ab","c") and ("a","bc")
	}
	var id [32]byte
	m.Sum(id[:0])
	return id
}

// begin looks the triple up. failed: it failed within failTTL, answer
// 401 now. Otherwise the caller checks it and calls done with whether it
// failed. A twin already being checked is waited for (up to ctx): its
// failure is this request's answer too; after its success (or a busy
// answer) this request checks for itself, side by side with the others.
func (c *failCache) begin(ctx context.Context, remote, user, password string) (failed bool, done func(failed bool)) {
	if c == nil {
		return false, func(bool) {}
	}
	id := c.id(remote, user, password)
	record := func(failed bool) {
		if failed {
			c.mu.Lock()
			c.add(id)
			c.mu.Unlock()
		}
	}
	c.mu.Lock()
	if c.cached(id) {
		c.mu.Unlock()
		return true, nil
	}
	wait, twin := c.inflight[id]
	if !twin {
		ch := make(chan struct{})
		c.inflight[id] = ch
		c.mu.Unlock()
		return false, func(failed bool) {
			record(failed)
			c.mu.Lock()
			delete(c.inflight, id)
			c.mu.Unlock()
			close(ch)
		}
	}
	c.mu.Unlock()
	select {
	case <-wait:
	case <-ctx.Done():
		return false, record
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cached(id), record
}

// cached reports an unexpired failure of id; c.mu is held.
func (c *failCache) cached(id [32]byte) bool {
	exp, ok := c.entries[id]
	if ok && c.now().After(exp) {
		delete(c.entries, id)
		return false
	}
	return ok
}

// add records a failure; c.mu is held.
func (c *failCache) add(id [32]byte) {
	now := c.now()
	if len(c.entries) >= failEntries {
		// Expired ones first; if none, the soonest to expire.
		var oldest [32]byte
		var oldestExp time.Time
		for k, exp := range c.entries {
			if now.After(exp) {
				delete(c.entries, k)
				continue
			}
			if oldestExp.IsZero() || exp.Before(oldestExp) {
				oldest, oldestExp = k, exp
			}
		}
		if len(c.entries) >= failEntries {
			delete(c.entries, oldest)
		}
	}
	c.entries[id] = now.Add(failTTL)
}
