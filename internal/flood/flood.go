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
	newClient := func(idle int) (*http.Client, *http.Transport) {
		tr := &http.Transport{DialContext: dial, MaxIdleConnsPerHost: idle}
		return &http.Client{Transport: tr, Timeout: time.Minute}, tr
	}
	flood, ftr := newClient(cfg.Concurrency)
	defer ftr.CloseIdleConnections()
	probe, ptr := newClient(2)
	defer ptr.CloseIdleConnections()

	r := Result{Codes: map[int]int{}, Other: map[int]int{}}
	var mu sync.Mutex
	jobs := make(chan int, cfg.Total)
	for i := range cfg.Total {
		jobs <- i
	}
	close(jobs)
	get := func(c *http.Client, u string) (int, error) {
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
	// The probes are clients already connected, as a monitor or a user's
	// open session is: one untimed request each before the flood starts,
	// so what is timed is the answer under load, not the TCP handshake
	// racing the flood's 200 (the guest caps connections, server.go).
	for _, u := range []string{cfg.Base + "/health", cfg.Base + "/?user=" + url.QueryEscape(cfg.User) + "&password=" + url.QueryEscape(cfg.Password)} {
		if _, err := get(probe, u); err != nil {
			return Result{}, fmt.Errorf("flood: warming the probe %s: %w", u, err)
		}
	}
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.Concurrency {
		wg.Go(func() {
			for i := range jobs {
				pw := "wrong"
				if cfg.Distinct {
					pw = "wrong-" + strconv.Itoa(i)
				}
				code, err := get(flood, cfg.Base+"/?user="+url.QueryEscape(cfg.User)+"&password="+url.QueryEscape(pw))
				if err != nil {
					code = -1
				}
				mu.Lock()
				r.Codes[code]++
				mu.Unlock()
			}
		})
	}
	done := make(chan struct{})
	timed := func(u string, want int, out *[]time.Duration) {
		for {
			select {
			case <-done:
				return
			default:
			}
			t0 := time.Now()
			code, err := get(probe, u)
			d := time.Since(t0)
			mu.Lock()
			switch {
			case err != nil:
				if len(r.Errs) < 5 {
					r.Errs = append(r.Errs, err.Error())
				}
			case code == want:
				*out = append(*out, d)
			default:
				r.Other[code]++
			}
			mu.Unlock()
			if err != nil && ctx.Err() != nil {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	var pw sync.WaitGroup
	pw.Go(func() {
		timed(cfg.Base+"/?user="+url.QueryEscape(cfg.User)+"&password="+url.QueryEscape(cfg.Password), http.StatusOK, &r.Logins)
	})
	pw.Go(func() { timed(cfg.Base+"/health", http.StatusUnauthorized, &r.Healths) })
	wg.Wait()
	r.Flooded = time.Since(start)
	close(done)
	pw.Wait()
	return r, ctx.Err()
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
