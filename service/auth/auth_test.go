package auth

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labctl/labctl/service/users"
	"github.com/labctl/labctl/service/vectors"
)

// Plaintexts of service/testdata/store (see its README).
var fixturePasswords = map[string]string{
	"john":            "password",
	"alice":           "p@ss w+rd;,",
	"bob.smith_2-dev": "Tr0ub4dor&3",
	"carol":           "pässwörd",
}

func fixtureStore(t testing.TB) MapStore {
	t.Helper()
	creds, err := users.Dir{Path: "../testdata/store"}.Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(creds) != len(fixturePasswords) {
		t.Fatalf("fixture store has %d users, want %d", len(creds), len(fixturePasswords))
	}
	return MapStore(creds)
}

func newTestHandler(t testing.TB, store Store, logw io.Writer) *Handler {
	t.Helper()
	h, err := NewHandler(store, slog.New(slog.NewTextHandler(logw, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// startServer serves h with the production limits (or cfg) on loopback.
func startServer(t testing.TB, h http.Handler, cfg ServerConfig) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.Config = NewServer(h, slog.New(slog.NewTextHandler(io.Discard, nil)), cfg)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

type reply struct {
	status int
	header http.Header
	body   string
}

// rawRequest sends the request line exactly as given (no client-side
// normalisation of the target) and reads one response.
func rawRequest(t testing.TB, addr, method, target string) reply {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", method, target, addr); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), &http.Request{Method: method})
	if err != nil {
		t.Fatalf("%s %.80s: %v", method, target, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func loadVectors(t testing.TB) []vectors.Vector {
	t.Helper()
	vs, err := vectors.ParseFile("../testdata/vectors.tsv")
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// Every shared vector, over a real HTTP server with the guest's limits.
func TestVectors(t *testing.T) {
	var logs bytes.Buffer
	h := newTestHandler(t, fixtureStore(t), &logs)
	addr := startServer(t, h, DefaultServerConfig())
	for _, v := range loadVectors(t) {
		t.Run(v.Name, func(t *testing.T) {
			got := rawRequest(t, addr, v.Method, v.Target)
			if got.status != v.Status || got.body != v.Body {
				t.Fatalf("line %d: %s %.80s = %d %q, want %d %q", v.Line, v.Method, v.Target, got.status, got.body, v.Status, v.Body)
			}
			if ct := got.header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if v.Status == 405 && got.header.Get("Allow") != AllowedMethods {
				t.Errorf("405 without Allow: %q", got.header.Get("Allow"))
			}
		})
	}
	// Passwords never reach the log, nor does the query.
	for _, secret := range []string{"passwor", "p@ss", "w+rd", "Tr0ub4dor", "pässw", "SSSSSSSS", "ppppppp", "query"} {
		if strings.Contains(logs.String(), secret) {
			t.Errorf("log contains %q:\n%s", secret, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "user=john outcome=ok") || !strings.Contains(logs.String(), "user=mallory outcome=invalid") {
		t.Errorf("log lacks user and outcome:\n%.2000s", logs.String())
	}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		if len(line) > 512 {
			t.Errorf("log line of %d bytes: hostile input is not bounded", len(line))
		}
	}
}

// A request target over MaxHeaderBytes is refused by the HTTP layer.
func TestHeaderLimit(t *testing.T) {
	h := newTestHandler(t, fixtureStore(t), io.Discard)
	addr := startServer(t, h, DefaultServerConfig())
	got := rawRequest(t, addr, "GET", "/?user=john&password="+strings.Repeat("A", 1<<20))
	if got.status != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("1 MiB target: status %d, want 431", got.status)
	}
}

type countingStore struct {
	MapStore
	lookups []string
}

func (c *countingStore) Lookup(n string) (users.Credential, bool) {
	c.lookups = append(c.lookups, n)
	return c.MapStore.Lookup(n)
}

// Unknown users and invalid names pay one PBKDF2 run at the store's cost,
// exactly like a wrong password; invalid names never reach the store.
func TestFailuresCostTheSame(t *testing.T) {
	store := &countingStore{MapStore: fixtureStore(t)}
	h := newTestHandler(t, store, io.Discard)
	var runs, pads []int
	real := h.verify
	h.verify = func(c users.Credential, pw string) bool {
		runs = append(runs, c.Iterations)
		return real(c, pw)
	}
	h.pad = func(n int) { pads = append(pads, n) }
	tests := []struct {
		name, query string
		status      int
		lookup      bool
	}{
		{"valid", "user=john&password=password", 200, true},
		{"wrong password", "user=john&password=nope", 401, true},
		{"valid, more iterations", "user=bob.smith_2-dev&password=Tr0ub4dor%263", 200, true},
		{"wrong password, more iterations", "user=bob.smith_2-dev&password=nope", 401, true},
		{"unknown user", "user=mallory&password=nope", 401, true},
		{"traversal", "user=../john&password=password", 401, false},
		{"nul", "user=john%00&password=password", 401, false},
		{"64k user", "user=" + strings.Repeat("a", 65536) + "&password=x", 401, false},
	}
	want := store.Iterations()
	if want != 2000 {
		t.Fatalf("store cost %d, want the fixtures' maximum 2000", want)
	}
	for _, tt := range tests {
		runs, pads, store.lookups = nil, nil, nil
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, &http.Request{Method: "GET", URL: &url.URL{Path: "/", RawQuery: tt.query}})
		if rec.Code != tt.status {
			t.Errorf("%s: status %d, want %d", tt.name, rec.Code, tt.status)
		}
		total := 0
		for _, n := range append(runs, pads...) {
			total += n
		}
		if len(runs) != 1 || total != want {
			t.Errorf("%s: PBKDF2 runs %v + padding %v, want one run and %d iterations in all", tt.name, runs, pads, want)
		}
		if (len(store.lookups) > 0) != tt.lookup {
			t.Errorf("%s: store lookups %q, want lookup=%v", tt.name, store.lookups, tt.lookup)
		}
	}
}

// The same property measured: an unknown user takes as long as a wrong
// password (a handler that skipped hashing would be ~100x faster).
func TestUnknownUserTiming(t *testing.T) {
	if testing.Short() {
		t.Skip("timing")
	}
	c, err := users.Hash("right", 100_000)
	if err != nil {
		t.Fatal(err)
	}
	h := newTestHandler(t, MapStore{"john": c}, io.Discard)
	measure := func(q string) time.Duration {
		rec := httptest.NewRecorder()
		start := time.Now()
		h.ServeHTTP(rec, &http.Request{Method: "GET", URL: &url.URL{Path: "/", RawQuery: q}})
		d := time.Since(start)
		if rec.Code != 401 {
			t.Fatalf("%s: %d", q, rec.Code)
		}
		return d
	}
	var wrong, unknown []time.Duration
	for i := range 11 {
		// A new password each time: a repeated failure is remembered
		// (failcache.go) and answered without PBKDF2.
		wrong = append(wrong, measure(fmt.Sprintf("user=john&password=wrong%d", i)))
		unknown = append(unknown, measure(fmt.Sprintf("user=nobody&password=wrong%d", i)))
	}
	med := func(d []time.Duration) time.Duration {
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		return d[len(d)/2]
	}
	ratio := float64(med(unknown)) / float64(med(wrong))
	t.Logf("median wrong password %v, unknown user %v, ratio %.2f", med(wrong), med(unknown), ratio)
	if ratio < 0.5 || ratio > 2 {
		t.Fatalf("unknown user / wrong password time ratio %.2f, want about 1", ratio)
	}
}

// A client that sends its headers slowly holds only its own connection:
// others are answered at once, and it is cut off at ReadHeaderTimeout.
func TestSlowClient(t *testing.T) {
	cfg := DefaultServerConfig()
	cfg.ReadHeaderTimeout = 500 * time.Millisecond
	h := newTestHandler(t, fixtureStore(t), io.Discard)
	addr := startServer(t, h, cfg)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const slowClients = 20
	closedAfter := make(chan time.Duration, slowClients)
	var wg sync.WaitGroup
	for range slowClients {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			// One byte every 50 ms: the full head would take over 4 s.
			head := "GET /?user=john&password=password HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n\r\n"
			for i := 0; i < len(head) && ctx.Err() == nil; i++ {
				if _, err := c.Write([]byte{head[i]}); err != nil {
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
			// Either the write failed or the head is complete; wait for the
			// server's verdict (close or a 408).
			_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
			_, _ = io.ReadAll(c)
			closedAfter <- time.Since(start)
		}()
	}
	time.Sleep(100 * time.Millisecond) // the slow clients are mid-header now
	for i := range 5 {
		start := time.Now()
		got := rawRequest(t, addr, "GET", "/?user=john&password=password")
		d := time.Since(start)
		if got.status != 200 {
			t.Fatalf("normal client %d: status %d", i, got.status)
		}
		if d > 200*time.Millisecond {
			t.Fatalf("normal client %d waited %v behind slow clients", i, d)
		}
	}
	wg.Wait()
	close(closedAfter)
	for d := range closedAfter {
		if d > 2*time.Second {
			t.Fatalf("a slow client was kept %v, want cut at about %v", d, cfg.ReadHeaderTimeout)
		}
	}
}

func TestParseQuery(t *testing.T) {
	tests := []struct {
		raw        string
		user, pass string
		err        error
	}{
		{"user=a&password=b", "a", "b", nil},
		{"password=b&user=a", "a", "b", nil},
		{"user=a+b&password=%2B", "a b", "+", nil},
		{"user=a=b&password=c", "a=b", "c", nil},
		{"user=a;password=c", "a;password=c", "", nil},
		{"&&user=a&&", "a", "", nil},
		{"user", "", "", nil},
		{"", "", "", nil},
		{"user=a&user=a", "", "", errDuplicate},
		{"user=a&%75ser=b", "", "", errDuplicate},
		{"user=%zz", "", "", errEncoding},
		{"x=%", "", "", errEncoding},
	}
	for _, tt := range tests {
		q, err := parseQuery(tt.raw)
		if err != tt.err || q.user != tt.user || q.password != tt.pass {
			t.Errorf("parseQuery(%q) = %+v, %v; want %q %q %v", tt.raw, q, err, tt.user, tt.pass, tt.err)
		}
	}
}

// FuzzHandler: no panic, only contract answers, and 200 only when the
// query carries exactly one user and one password that really are a
// fixture user's plaintext (checked without the hashing code).
func FuzzHandler(f *testing.F) {
	for _, v := range loadVectors(f) {
		if len(v.Target) < 4096 {
			_, q, _ := strings.Cut(v.Target, "?")
			f.Add(v.Method, q)
		}
	}
	h := newTestHandler(f, fixtureStore(f), io.Discard)
	f.Fuzz(func(t *testing.T, method, rawQuery string) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, &http.Request{Method: method, URL: &url.URL{Path: "/", RawQuery: rawQuery}, Header: http.Header{}})
		body := rec.Body.String()
		if method == "HEAD" {
			if body != "" {
				t.Fatalf("HEAD with body %q", body)
			}
			// Judge the status by what GET would say.
			rec = httptest.NewRecorder()
			h.ServeHTTP(rec, &http.Request{Method: "GET", URL: &url.URL{Path: "/", RawQuery: rawQuery}, Header: http.Header{}})
			body = rec.Body.String()
		}
		switch rec.Code {
		case 200:
			user, pass, ok := oracle(rawQuery)
			if !ok || fixturePasswords[user] != pass || body != "hello "+user+"!\n" {
				t.Fatalf("200 %q for %s %q (oracle: %q %v)", body, method, rawQuery, user, ok)
			}
			if method != "GET" && method != "HEAD" {
				t.Fatalf("200 for method %q", method)
			}
		case 401:
			if body != BodyInvalid && body != BodyNoUser {
				t.Fatalf("401 body %q", body)
			}
		case 400:
			if body != BodyBadRequest {
				t.Fatalf("400 body %q", body)
			}
		case 405:
			if body != BodyMethod || rec.Header().Get("Allow") != AllowedMethods {
				t.Fatalf("405 body %q allow %q", body, rec.Header().Get("Allow"))
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}

// oracle extracts user and password independently of parseQuery, with the
// standard library's query parser after turning ';' into an escape (which
// url.ParseQuery rejects but the contract treats as data).
func oracle(raw string) (user, pass string, ok bool) {
	vals, err := url.ParseQuery(strings.ReplaceAll(raw, ";", "%3B"))
	if err != nil || len(vals["user"]) != 1 || len(vals["password"]) != 1 {
		return "", "", false
	}
	return vals["user"][0], vals["password"][0], true
}

func BenchmarkHandler(b *testing.B) {
	for _, bc := range []struct {
		name       string
		iterations int
		query      string
	}{
		{"missing", 1000, ""},
		{"valid-1000", 1000, "user=john&password=password"},
		{"unknown-1000", 1000, "user=nobody&password=password"},
		{"valid-default", users.DefaultIterations, "user=john&password=password"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			c, err := users.Hash("password", bc.iterations)
			if err != nil {
				b.Fatal(err)
			}
			h := newTestHandler(b, MapStore{"john": c}, io.Discard)
			req := &http.Request{Method: "GET", URL: &url.URL{Path: "/", RawQuery: bc.query}}
			for b.Loop() {
				h.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}

// TestOverloadAnswersBusy: with every PBKDF2 slot held, a credentialed
// request is answered 503 + Retry-After (any user alike) instead of
// queueing, and a credential-free request (the health probe) still gets
// its 401 without waiting for a slot.
func TestOverloadAnswersBusy(t *testing.T) {
	h := newTestHandler(t, fixtureStore(t), io.Discard)
	h.slotWait = 10 * time.Millisecond
	release := make(chan struct{})
	entered := make(chan struct{}, cap(h.slots))
	real := h.verify
	h.verify = func(c users.Credential, pw string) bool {
		entered <- struct{}{}
		<-release
		return real(c, pw)
	}
	var wg sync.WaitGroup
	for i := range cap(h.slots) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Distinct passwords: identical ones would be coalesced
			// into one check (failcache.go) and hold one slot.
			h.ServeHTTP(httptest.NewRecorder(), &http.Request{Method: "GET", URL: &url.URL{Path: "/", RawQuery: fmt.Sprintf("user=john&password=nope%d", i)}})
		}()
	}
	for range cap(h.slots) {
		<-entered
	}
	for _, tt := range []struct {
		query, body string
		status      int
	}{
		{"user=john&password=password", BodyBusy, 503},
		{"user=mallory&password=nope", BodyBusy, 503},
		{"", BodyNoUser, 401},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, &http.Request{Method: "GET", URL: &url.URL{Path: "/health", RawQuery: tt.query}})
		if rec.Code != tt.status || rec.Body.String() != tt.body {
			t.Errorf("%q: %d %q, want %d %q", tt.query, rec.Code, rec.Body, tt.status, tt.body)
		}
		if ra := rec.Header().Get("Retry-After"); (tt.status == 503) != (ra == RetryAfter) {
			t.Errorf("%q: Retry-After %q", tt.query, ra)
		}
	}
	close(release)
	wg.Wait()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, &http.Request{Method: "GET", URL: &url.URL{Path: "/", RawQuery: "user=john&password=password"}})
	if rec.Code != 200 {
		t.Errorf("after the flood: status %d, want 200", rec.Code)
	}
}
