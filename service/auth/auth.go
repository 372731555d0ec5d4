// Package auth is the authentication service's HTTP handler: the contract
// of DESIGN.md ("Contracts") and service/README.md, pinned by
// service/testdata/vectors.tsv.
package auth

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labctl/labctl/service/users"
)

// Response bodies of the contract.
const (
	BodyInvalid    = "Invalid login\n"
	BodyNoUser     = "No user given\n"
	BodyBadRequest = "Bad request\n"
	BodyMethod     = "Method not allowed\n"
	AllowedMethods = "GET, HEAD"
)

// Store maps user names to stored credentials.
type Store interface {
	Lookup(name string) (users.Credential, bool)
	// Iterations is the PBKDF2 cost every request with credentials pays
	// (unknown users against a dummy, cheaper users padded up to it), so
	// that no answer's duration tells which users exist.
	Iterations() int
}

// MapStore is a Store over a map, e.g. from users.ReadImage.
type MapStore map[string]users.Credential

// Lookup implements Store.
func (m MapStore) Lookup(name string) (users.Credential, bool) {
	c, ok := m[name]
	return c, ok
}

// Iterations implements Store: the highest count in the store,
// DefaultIterations when empty.
func (m MapStore) Iterations() int {
	n := 0
	for _, c := range m {
		n = max(n, c.Iterations)
	}
	if n == 0 {
		return users.DefaultIterations
	}
	return n
}

// Handler answers GET/HEAD ?user=U&password=P on any path.
type Handler struct {
	store Store
	dummy users.Credential
	cost  int // PBKDF2 iterations every credentialed request pays
	log   *slog.Logger
	// Swapped by tests to count the work done.
	verify func(users.Credential, string) bool
	pad    func(iterations int)
	// slots bounds concurrent PBKDF2 runs: a flood of credentialed requests
	// then queues at most slotWait and is answered 503 + Retry-After, so a
	// valid login and a credential-free (health) request stay fast. One
	// core fewer than the machine has (at least one), so accepting and
	// answering never waits behind PBKDF2.
	slots    chan struct{}
	slotWait time.Duration
	// recent answers a client's repeat of its own just-failed login
	// without PBKDF2 (failcache.go).
	recent *failCache
}

// Overload answer: credentialed requests that find every PBKDF2 slot busy
// for SlotWait get 503 with Retry-After, whatever the user, so the answer
// says nothing about which users exist.
const (
	BodyBusy        = "Busy, retry later\n"
	RetryAfter      = "1"
	DefaultSlotWait = 250 * time.Millisecond
	outcomeBusy     = "busy"
)

// NewHandler returns the handler over store, logging user names and
// outcomes (never passwords, never the query) to log.
func NewHandler(store Store, log *slog.Logger) (*Handler, error) {
	// The dummy only has to cost the same PBKDF2 run as a real credential;
	// its key is never meant to match (and found gates success anyway). A
	// random key needs no derivation, so booting does not pay a full-cost
	// PBKDF2 run (83 ms at 600,000 iterations) before serving.
	salt := sha256.Sum256([]byte("labctl auth dummy credential"))
	dummy := users.Credential{Iterations: store.Iterations(), Salt: salt[:users.SaltLen], Key: make([]byte, users.KeyLen)}
	if _, err := rand.Read(dummy.Key); err != nil {
		return nil, fmt.Errorf("auth handler: dummy credential: %w", err)
	}
	return &Handler{store: store, dummy: dummy, cost: dummy.Iterations, log: log, verify: users.Credential.Verify, pad: burn,
		slots: make(chan struct{}, max(1, runtime.NumCPU()-1)), slotWait: DefaultSlotWait, recent: newFailCache()}, nil
}

// Outcomes, as logged.
const (
	outcomeOK         = "ok"
	outcomeInvalid    = "invalid"
	outcomeMissing    = "missing"
	outcomeBadRequest = "bad_request"
	outcomeMethod     = "method_not_allowed"
)

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status, body, user, outcome := h.answer(r)
	hdr := w.Header()
	hdr.Set("Content-Type", "text/plain; charset=utf-8")
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-store")
	if status == http.StatusMethodNotAllowed {
		hdr.Set("Allow", AllowedMethods)
	}
	if status == http.StatusServiceUnavailable {
		hdr.Set("Retry-After", RetryAfter)
	}
	hdr.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(body))
	}
	h.log.LogAttrs(r.Context(), slog.LevelInfo, "auth",
		slog.String("method", logSafe(r.Method)),
		slog.String("user", logSafe(user)),
		slog.String("outcome", outcome),
		slog.Int("status", status),
		slog.String("remote", r.RemoteAddr))
}

func (h *Handler) answer(r *http.Request) (status int, body, user, outcome string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return http.StatusMethodNotAllowed, BodyMethod, "", outcomeMethod
	}
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		return http.StatusBadRequest, BodyBadRequest, "", outcomeBadRequest
	}
	if q.user == "" || q.password == "" {
		return http.StatusUnauthorized, BodyNoUser, q.user, outcomeMissing
	}
	failed, done := h.recent.begin(r.Context(), r.RemoteAddr, q.user, q.password)
	if failed {
		return http.StatusUnauthorized, BodyInvalid, q.user, outcomeInvalid
	}
	ok := false
	defer func() { done(!ok) }()
	if !h.acquire(r) {
		ok = true // busy is no failure of the password: nothing to remember
		return http.StatusServiceUnavailable, BodyBusy, q.user, outcomeBusy
	}
	defer func() { <-h.slots }()
	// Invalid names never reach the store; they, like unknown users, pay a
	// PBKDF2 run against the dummy so all failures cost the same.
	var cred users.Credential
	found := false
	if users.ValidName(q.user) {
		cred, found = h.store.Lookup(q.user)
	}
	if !found {
		cred = h.dummy
	}
	ok = h.verify(cred, q.password) && found
	// A user stored with fewer iterations than the store's maximum pays the
	// difference, so no outcome can be told apart by its duration.
	if extra := h.cost - cred.Iterations; extra > 0 {
		h.pad(extra)
	}
	if ok {
		// The name matched a stored name, so it is [A-Za-z0-9._-] only.
		return http.StatusOK, "hello " + q.user + "!\n", q.user, outcomeOK
	}
	return http.StatusUnauthorized, BodyInvalid, q.user, outcomeInvalid
}

// acquire takes a PBKDF2 slot, waiting at most slotWait (or until the
// client goes away).
func (h *Handler) acquire(r *http.Request) bool {
	select {
	case h.slots <- struct{}{}:
		return true
	default:
	}
	t := time.NewTimer(h.slotWait)
	defer t.Stop()
	select {
	case h.slots <- struct{}{}:
		return true
	case <-t.C:
	case <-r.Context().Done():
	}
	return false
}

// burn spends the CPU of n PBKDF2-SHA256 iterations.
func burn(n int) {
	_, _ = pbkdf2.Key(sha256.New, "labctl-pad", []byte("labctl-pad-salt!"), n, users.KeyLen)
}

var (
	errEncoding  = errors.New("bad percent-encoding")
	errDuplicate = errors.New("duplicate parameter")
)

type query struct{ user, password string }

// parseQuery decodes an application/x-www-form-urlencoded query ('+' is a
// space, %XX a byte): pairs split on '&' only, empty pairs skipped, the
// first '=' separates key and value, keys decoded before matching. Any bad
// escape anywhere fails the whole query; a second user or password key
// fails it too, so no component can be fooled about which value counted.
func parseQuery(raw string) (query, error) {
	var q query
	var nUser, nPass int
	for raw != "" {
		var pair string
		pair, raw, _ = strings.Cut(raw, "&")
		if pair == "" {
			continue
		}
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return query{}, errEncoding
		}
		val, err := url.QueryUnescape(v)
		if err != nil {
			return query{}, errEncoding
		}
		switch key {
		case "user":
			nUser++
			q.user = val
		case "password":
			nPass++
			q.password = val
		}
	}
	if nUser > 1 || nPass > 1 {
		return query{}, errDuplicate
	}
	return q, nil
}

// logSafe bounds what a hostile request can put in a log line.
func logSafe(s string) string {
	const limit = 64
	if len(s) > limit {
		s = s[:limit] + "…(" + strconv.Itoa(len(s)) + " bytes)"
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return string(bytes.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, []byte(s)))
}
