package check

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LoadConfig describes a bounded load run.
type LoadConfig struct {
	URL         string // full URL with query, e.g. http://IP:8088/?user=john&password=password
	Requests    int    // total requests, 1..10,000,000
	Concurrency int    // keep-alive connections/workers, 1..4096
	WantStatus  int    // anything else counts as an error; default 200
	Dial        DialFunc
	Timeout     time.Duration // per request; default 10 s
}

// LoadResult summarises a load run; latencies are per completed request.
type LoadResult struct {
	Requests int `json:"requests"`
	Errors   int `json:"errors"`
	// Busy counts 503 answers with Retry-After (the guest's PBKDF2 slots
	// were full, service/README.md): the request waited as told and was
	// sent again, up to busyRetries times, before it counted as an error.
	Busy        int           `json:"busy"`
	FirstError  string        `json:"first_error,omitempty"`
	Connections int64         `json:"connections"`
	P50         time.Duration `json:"-"`
	P99         time.Duration `json:"-"`
	Max         time.Duration `json:"-"`
	P50MS       float64       `json:"p50_ms"`
	P99MS       float64       `json:"p99_ms"`
	MaxMS       float64       `json:"max_ms"`
	DurationMS  float64       `json:"duration_ms"`
	PerSecond   float64       `json:"requests_per_second"`
}

// Load sends cfg.Requests GETs over cfg.Concurrency keep-alive connections
// and reports errors and latency percentiles. It stops early when ctx ends
// (returning what it has and ctx's error).
func Load(ctx context.Context, cfg LoadConfig) (LoadResult, error) {
	if err := checkLoadConfig(cfg); err != nil {
		return LoadResult{}, err
	}
	cfg = loadDefaults(cfg)
	var conns atomic.Int64
	tr := countingTransport(cfg.Dial, cfg.Concurrency, &conns)
	defer tr.CloseIdleConnections()
	run := &loadRun{
		cfg:    cfg,
		client: &http.Client{Transport: tr, Timeout: cfg.Timeout},
		lat:    make([]time.Duration, cfg.Requests),
	}

	start := time.Now()
	run.work(ctx)
	elapsed := time.Since(start)

	res := run.summary(elapsed, conns.Load())
	if err := ctx.Err(); err != nil {
		return res, fmt.Errorf("load %s: %w", cfg.URL, err)
	}
	return res, nil
}

// checkLoadConfig rejects out-of-range request and worker counts and a
// URL without a usable host and port.
func checkLoadConfig(cfg LoadConfig) error {
	if cfg.Requests < 1 || cfg.Requests > 10_000_000 {
		return fmt.Errorf("load %s: requests %d not in 1..10000000", cfg.URL, cfg.Requests)
	}
	if cfg.Concurrency < 1 || cfg.Concurrency > 4096 {
		return fmt.Errorf("load %s: concurrency %d not in 1..4096", cfg.URL, cfg.Concurrency)
	}
	if _, err := hostPort(cfg.URL); err != nil {
		return fmt.Errorf("load: %w", err)
	}
	return nil
}

// loadDefaults fills in the expected status, the timeout and the dialer
// where cfg leaves them zero.
func loadDefaults(cfg LoadConfig) LoadConfig {
	if cfg.WantStatus == 0 {
		cfg.WantStatus = http.StatusOK
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Dial == nil {
		cfg.Dial = (&net.Dialer{}).DialContext
	}
	return cfg
}

// countingTransport is a keep-alive transport of up to n connections
// that counts each connection it dials in conns.
func countingTransport(dial DialFunc, n int, conns *atomic.Int64) *http.Transport {
	return &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err == nil {
				conns.Add(1)
			}
			return c, err
		},
		MaxConnsPerHost:     n,
		MaxIdleConnsPerHost: n,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// loadRun is the state the workers of one Load share.
type loadRun struct {
	cfg    LoadConfig
	client *http.Client
	lat    []time.Duration // per request, by index
	next   atomic.Int64    // the next request's index
	mu     sync.Mutex      // guards res
	res    LoadResult
}

// work runs the workers and waits for them to finish.
func (r *loadRun) work(ctx context.Context) {
	var wg sync.WaitGroup
	for range min(r.cfg.Concurrency, r.cfg.Requests) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.worker(ctx)
		}()
	}
	wg.Wait()
}

// worker takes request indexes until all are taken or ctx ends, timing
// each request and counting its failure.
func (r *loadRun) worker(ctx context.Context) {
	for ctx.Err() == nil {
		i := int(r.next.Add(1)) - 1
		if i >= r.cfg.Requests {
			return
		}
		t0 := time.Now()
		err := r.send(ctx)
		r.lat[i] = time.Since(t0)
		if err != nil && ctx.Err() == nil {
			r.fail(err)
		}
	}
}

// send makes one request, sending it again after a busy answer (waiting
// as told) up to busyRetries times.
func (r *loadRun) send(ctx context.Context) error {
	err := loadOne(ctx, r.client, r.cfg.URL, r.cfg.WantStatus)
	for try := 0; try < busyRetries && ctx.Err() == nil; try++ {
		var b *busyError
		if !errors.As(err, &b) {
			break
		}
		r.mu.Lock()
		r.res.Busy++
		r.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(jittered(b.after)):
		}
		err = loadOne(ctx, r.client, r.cfg.URL, r.cfg.WantStatus)
	}
	return err
}

// fail counts an error, keeping the first one's text.
func (r *loadRun) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.res.Errors++
	if r.res.FirstError == "" {
		r.res.FirstError = err.Error()
	}
}

// summary completes the result once the workers are done: the requests
// taken, the connections dialed, the rate and the latency percentiles.
func (r *loadRun) summary(elapsed time.Duration, conns int64) LoadResult {
	res := r.res
	done := min(int(r.next.Load()), r.cfg.Requests)
	res.Requests = done
	res.Connections = conns
	res.DurationMS = ms(elapsed)
	if elapsed > 0 {
		res.PerSecond = float64(done) / elapsed.Seconds()
	}
	l := slices.Clone(r.lat[:done])
	slices.Sort(l)
	if len(l) > 0 {
		res.P50 = l[(len(l)-1)*50/100]
		res.P99 = l[(len(l)-1)*99/100]
		res.Max = l[len(l)-1]
		res.P50MS, res.P99MS, res.MaxMS = ms(res.P50), ms(res.P99), ms(res.Max)
	}
	return res
}

func loadOne(ctx context.Context, client *http.Client, u string, want int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		// url.Error quotes the URL, password included: keep only the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			return ue.Err
		}
		return err
	}
	defer resp.Body.Close()
	// Drain so the connection is reused.
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody)); err != nil {
		return err
	}
	if resp.StatusCode != want {
		if after, ok := retryAfter(resp.StatusCode, resp.Header); ok && want != http.StatusServiceUnavailable {
			return &busyError{status: resp.Status, after: after}
		}
		return errors.New("status " + resp.Status)
	}
	return nil
}

// busyRetries bounds how often one request is sent again after a 503.
const busyRetries = 5

// busyError is a 503 with Retry-After: the guest asks to come back.
type busyError struct {
	status string
	after  time.Duration
}

func (b *busyError) Error() string {
	return "status " + b.status + " (Retry-After " + b.after.String() + ")"
}

// jittered is a Retry-After wait spread over [after, 2*after): clients
// told "1 s" at the same instant would otherwise all come back at the
// same instant and fill the guest's slots again ("full jitter" in
// spirit; the guest's minimum is kept).
func jittered(after time.Duration) time.Duration {
	if after <= 0 {
		return 0
	}
	return after + rand.N(after)
}

// retryAfter reads a 503's Retry-After in seconds (RFC 9110 §10.2.3; an
// HTTP date is not used by the guests), capped at 5 s.
func retryAfter(status int, h http.Header) (time.Duration, bool) {
	if status != http.StatusServiceUnavailable {
		return 0, false
	}
	n, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After")))
	if err != nil || n < 0 {
		return 0, false
	}
	return min(time.Duration(n)*time.Second, 5*time.Second), true
}
