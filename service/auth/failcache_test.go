package auth

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/labctl/labctl/service/users"
)

func get(h *Handler, remote, query string) int {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, &http.Request{Method: "GET", URL: &url.URL{Path: "/", RawQuery: query}, RemoteAddr: remote})
	return rec.Code
}

// A client repeating its own failed login is answered 401 without another
// PBKDF2 run; another client, another password, or a success always pays
// the full check; a remembered failure expires.
func TestFailCacheRemembersOwnFailures(t *testing.T) {
	h := newTestHandler(t, fixtureStore(t), io.Discard)
	var runs atomic.Int32
	real := h.verify
	h.verify = func(c users.Credential, pw string) bool { runs.Add(1); return real(c, pw) }
	now := time.Unix(1_000_000, 0)
	h.recent.now = func() time.Time { return now }
	steps := []struct {
		name, remote, query string
		code                int
		runs                int32 // PBKDF2 runs the request costs
	}{
		{"first failure", "10.0.0.1:1000", "user=john&password=nope", 401, 1},
		{"repeat, other port", "10.0.0.1:2000", "user=john&password=nope", 401, 0},
		{"same try, other client", "10.0.0.2:1000", "user=john&password=nope", 401, 1},
		{"other password", "10.0.0.1:1000", "user=john&password=nope2", 401, 1},
		{"unknown user, repeated", "10.0.0.1:1000", "user=mallory&password=x", 401, 1},
		{"unknown user, again", "10.0.0.1:1000", "user=mallory&password=x", 401, 0},
		{"valid", "10.0.0.1:1000", "user=john&password=password", 200, 1},
		{"valid again: successes are not remembered", "10.0.0.1:1000", "user=john&password=password", 200, 1},
		{"no separator ambiguity", "10.0.0.1:1000", "user=joh&password=nnope", 401, 1},
	}
	for _, s := range steps {
		before := runs.Load()
		if code := get(h, s.remote, s.query); code != s.code {
			t.Errorf("%s: status %d, want %d", s.name, code, s.code)
		}
		if got := runs.Load() - before; got != s.runs {
			t.Errorf("%s: %d PBKDF2 runs, want %d", s.name, got, s.runs)
		}
	}
	now = now.Add(failTTL + time.Second)
	before := runs.Load()
	if code := get(h, "10.0.0.1:1000", "user=john&password=nope"); code != 401 || runs.Load()-before != 1 {
		t.Errorf("after the TTL: status %d, %d runs; want 401 after a full check", code, runs.Load()-before)
	}
}

// Twins in flight are coalesced: many identical wrong logins at once cost
// one PBKDF2 run and all get 401.
func TestFailCacheCoalescesTwins(t *testing.T) {
	h := newTestHandler(t, fixtureStore(t), io.Discard)
	var runs atomic.Int32
	release := make(chan struct{})
	real := h.verify
	h.verify = func(c users.Credential, pw string) bool { runs.Add(1); <-release; return real(c, pw) }
	const n = 50
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() { codes <- get(h, "10.0.0.1:1", "user=john&password=nope") })
	}
	// Let them all arrive, then finish the one check.
	for deadline := time.Now().Add(10 * time.Second); runs.Load() == 0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond)
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != 401 {
			t.Errorf("status %d, want 401", c)
		}
	}
	// Twins that arrived after the leader finished hit the cache; none
	// may start a second check while the first runs.
	if got := runs.Load(); got != 1 {
		t.Errorf("%d PBKDF2 runs for %d identical wrong logins, want 1", got, n)
	}
}

// The cache is bounded: a client varying passwords cannot grow it.
func TestFailCacheBounded(t *testing.T) {
	c := newFailCache()
	for i := range failEntries + 64 {
		_, done := c.begin(t.Context(), "10.0.0.1:1", "john", string(rune(i)))
		done(true)
	}
	if n := len(c.entries); n > failEntries {
		t.Errorf("%d entries, want at most %d", n, failEntries)
	}
	if len(c.inflight) != 0 {
		t.Errorf("%d checks still marked in flight", len(c.inflight))
	}
}
