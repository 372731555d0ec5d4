// Package flood is issue 10's hostile client, bounded: N wrong-password
// requests at C concurrency against an auth service, while one client
// logs in validly and another asks /health in a loop. It measures how the
// service holds up (the answers' codes, the worst valid-login and health
// latencies). Used by the auth benchmark (loopback) and the fault suite
// (a sim guest, from the host's namespace); never aimed anywhere else.
package flood

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Config is one flood.
type Config struct {
	Base        string // http://HOST:PORT of the service
	Dial        func(ctx context.Context, network, addr string) (net.Conn, error)
	Total       int // wrong-password requests, 1..100,000
	Concurrency int // flooding workers, 1..1,000
	// Distinct gives every request its own wrong password (nothing to
	// coalesce or remember: each costs a full check); otherwise they all
	// repeat one, like a script in a retry loop.
	Distinct bool
	// User and Password log in validly while the flood runs.
	User, Password string
}

// Result is what the flood saw.
type Result struct {
	Codes   map[int]int // flood answers by status; -1 transport errors
	Flooded time.Duration
	Logins  []time.Duration // valid logins answered 200
	Healths []time.Duration // /health answered (401 "No user given")
	// Other counts the probes answered otherwise (e.g. 503 busy), by status.
	Other map[int]int
	Errs  []string // probes' transport errors, first few
}

// Run floods and returns what it saw. It stops early when ctx ends.
func Run(ctx context.Context, cfg Config) (Result, error) {
	if cfg.Total < 1 || cfg.Total > 100_000 || cfg.Concurrency < 1 || cfg.Concurrency > 1000 {
		return Result{}, fmt.Errorf("flood: total %d (1..100000), concurrency %d (1..1000)", cfg.Total, cfg.Concurrency)
	}
	dial := cfg.Dial
	if dial == nil {
		dial = (&net.Dialer{}).DialContext
	}
	flood, ftr := newClient(dial, cfg.Concurrency)
	defer ftr.CloseIdleConnections()
	probe, ptr := newClient(dial, 2)
	defer ptr.CloseIdleConnections()

	f := &flooder{cfg: cfg, flood: flood, probe: probe, r: Result{Codes: map[int]int{}, Other: map[int]int{}}}
	jobs := jobQueue(cfg.Total)
	if err := f.warm(ctx); err != nil {
		return Result{}, err
	}
	start := time.Now()
	var wg sync.WaitGroup
	f.startFlood(ctx, &wg, jobs)
	done := make(chan struct{})
	var pw sync.WaitGroup
	f.startProbes(ctx, &pw, done)
	wg.Wait()
	f.r.Flooded = time.Since(start)
	close(done)
	pw.Wait()
	return f.r, ctx.Err()
}

// newClient is an HTTP client dialing with dial that keeps up to idle
// connections open, and its transport.
func newClient(dial func(ctx context.Context, network, addr string) (net.Conn, error), idle int) (*http.Client, *http.Transport) {
	tr := &http.Transport{DialContext: dial, MaxIdleConnsPerHost: idle}
	return &http.Client{Transport: tr, Timeout: time.Minute}, tr
}

// jobQueue is a closed channel holding the request indexes 0..total-1.
func jobQueue(total int) <-chan int {
	jobs := make(chan int, total)
	for i := range total {
		jobs <- i
	}
	close(jobs)
	return jobs
}

// get asks for u with c and returns the answer's status, body drained.
func get(ctx context.Context, c *http.Client, u string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// loginURL is the service's login request for user and password.
func loginURL(base, user, password string) string {
	return base + "/?user=" + url.QueryEscape(user) + "&password=" + url.QueryEscape(password)
}

// flooder is the state one Run's flood workers and probes share.
type flooder struct {
	cfg          Config
	flood, probe *http.Client
	mu           sync.Mutex // guards r's counts and lists
	r            Result
}

// warm sends each probe's request once, untimed.
func (f *flooder) warm(ctx context.Context) error {
	// The probes are clients already connected, as a monitor or a user's
	// open session is: one untimed request each before the flood starts,
	// so what is timed is the answer under load, not the TCP handshake
	// racing the flood's 200 (the guest caps connections, server.go).
	for _, u := range []string{f.cfg.Base + "/health", loginURL(f.cfg.Base, f.cfg.User, f.cfg.Password)} {
		if _, err := get(ctx, f.probe, u); err != nil {
			return fmt.Errorf("flood: warming the probe %s: %w", u, err)
		}
	}
	return nil
}

// startFlood starts cfg.Concurrency workers on jobs, counted in wg.
func (f *flooder) startFlood(ctx context.Context, wg *sync.WaitGroup, jobs <-chan int) {
	for range f.cfg.Concurrency {
		wg.Go(func() { f.floodWorker(ctx, jobs) })
	}
}

// floodWorker sends a wrong-password request per job and counts the
// answers by status (-1 for a transport error).
func (f *flooder) floodWorker(ctx context.Context, jobs <-chan int) {
	for i := range jobs {
		pw := "wrong"
		if f.cfg.Distinct {
			pw = "wrong-" + strconv.Itoa(i)
		}
		code, err := get(ctx, f.flood, loginURL(f.cfg.Base, f.cfg.User, pw))
		if err != nil {
			code = -1
		}
		f.mu.Lock()
		f.r.Codes[code]++
		f.mu.Unlock()
	}
}

// startProbes starts the valid-login and the /health probes, counted in
// pw, until done is closed.
func (f *flooder) startProbes(ctx context.Context, pw *sync.WaitGroup, done <-chan struct{}) {
	pw.Go(func() {
		f.timed(ctx, done, loginURL(f.cfg.Base, f.cfg.User, f.cfg.Password), http.StatusOK, &f.r.Logins)
	})
	pw.Go(func() { f.timed(ctx, done, f.cfg.Base+"/health", http.StatusUnauthorized, &f.r.Healths) })
}

// timed asks for u in a loop until done is closed, appending to out the
// latencies of the answers with status want and recording the others.
func (f *flooder) timed(ctx context.Context, done <-chan struct{}, u string, want int, out *[]time.Duration) {
	for {
		select {
		case <-done:
			return
		default:
		}
		t0 := time.Now()
		code, err := get(ctx, f.probe, u)
		d := time.Since(t0)
		f.mu.Lock()
		switch {
		case err != nil:
			if len(f.r.Errs) < 5 {
				f.r.Errs = append(f.r.Errs, err.Error())
			}
		case code == want:
			*out = append(*out, d)
		default:
			f.r.Other[code]++
		}
		f.mu.Unlock()
		if err != nil && ctx.Err() != nil {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Worst is the longest of ds.
func Worst(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// Median is the middle of ds, rounded to the millisecond.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

// String is the one-line summary the benchmark and the fault suite print.
func (r Result) String() string {
	n := 0
	for _, c := range r.Codes {
		n += c
	}
	return fmt.Sprintf("%d wrong-password requests in %.1fs, answers %v; valid login n=%d p50=%v max=%v; health n=%d p50=%v max=%v; probes answered otherwise %v",
		n, r.Flooded.Seconds(), r.Codes, len(r.Logins), Median(r.Logins), Worst(r.Logins).Round(time.Millisecond),
		len(r.Healths), Median(r.Healths), Worst(r.Healths).Round(time.Millisecond), r.Other)
}
