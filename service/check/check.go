// Package check is the conformance probe of the auth service: it sends the
// contract's cases to any guest (the Go reference guest or the OCaml
// unikernel) over raw HTTP/1.1 and reports per case; it also writes JUnit
// XML and generates load.
package check

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labctl/labctl/service/vectors"
)

// DialFunc dials the guest; callers inside another network namespace pass
// one whose sockets are created there.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Case is one request and the exact answer the contract requires.
type Case struct {
	Name       string
	Method     string
	Target     string // raw request-target, sent as is
	WantStatus int
	WantBody   string
	WantHeader map[string]string // canonical header name → exact value
}

// Result is one case's outcome; JSON-friendly, and free of passwords.
// The JSON keys are the ones every labctl document uses (name, ok,
// elapsed_ms; docs/json.md, schema 2), not the Go names.
type Result struct {
	Name       string        `json:"name"`
	Pass       bool          `json:"ok"`
	Request    string        `json:"request"` // method and target, password values redacted
	Expected   string        `json:"expected"`
	Got        string        `json:"got"`
	Error      string        `json:"error,omitempty"`
	DurationMS float64       `json:"elapsed_ms"`
	Duration   time.Duration `json:"-"`
}

// Report is one guest's results. Started is absent for a guest that was
// never probed (declared but not running).
type Report struct {
	Guest      string    `json:"name"`
	URL        string    `json:"url"`
	Pass       bool      `json:"ok"`
	Passed     int       `json:"passed"`
	Failed     int       `json:"failed"`
	Started    time.Time `json:"started,omitzero"`
	DurationMS float64   `json:"elapsed_ms"`
	Results    []Result  `json:"cases"`
}

// Failures returns the failed results.
func (r Report) Failures() []Result {
	var out []Result
	for _, res := range r.Results {
		if !res.Pass {
			out = append(out, res)
		}
	}
	return out
}

// Options for Run.
type Options struct {
	Guest   string        // name in the report; default: the URL's host
	Dial    DialFunc      // default: a net.Dialer
	Timeout time.Duration // per case; default 10 s (PBKDF2 at full cost takes ~0.1 s)
	// Parallel is how many cases are in flight at once; default
	// DefaultParallel.
	Parallel int
}

// DefaultParallel is Options.Parallel's default: one case at a time per
// guest. The guest runs PBKDF2 in cores-1 slots (one on a 2-core dom0)
// and answers an overflow that waited 250 ms with 503 + Retry-After: 1,
// which runCase honours. Measured on the sim (2 cores, ~170 ms per
// PBKDF2 at the product cost), a cold 22-case check took 2.0-2.3 s one at
// a time and 2.5-3.6 s with two or four in flight, the queued cases
// waiting out Retry-After. Guests are checked side by side (RunAll)
// instead: each has slots of its own.
const DefaultParallel = 1

const (
	bodyOK      = "hello %s!\n"
	bodyInvalid = "Invalid login\n"
	bodyNoUser  = "No user given\n"
	bodyBad     = "Bad request\n"
	bodyMethod  = "Method not allowed\n"
	allow       = "GET, HEAD"
)

// unknownUser is a name the probe assumes no lab stores.
const unknownUser = "labctl-check-no-such-user"

// ProbeCases returns the contract probe for a guest that stores user with
// password: valid, wrong password, unknown user, missing parameters and
// the hostile cases of service/README.md.
func ProbeCases(user, password string) []Case {
	u, p := url.QueryEscape(user), url.QueryEscape(password)
	unknown := unknownUser
	if user == unknown {
		unknown += "-2"
	}
	ok := func(name, method, target string) Case {
		body := fmt.Sprintf(bodyOK, user)
		if method == http.MethodHead {
			body = ""
		}
		return Case{Name: name, Method: method, Target: target, WantStatus: 200, WantBody: body}
	}
	fail := func(name, target string, status int, body string) Case {
		return Case{Name: name, Method: http.MethodGet, Target: target, WantStatus: status, WantBody: body}
	}
	big := strings.Repeat("A", 65536)
	cs := []Case{
		ok("valid", "GET", "/?user="+u+"&password="+p),
		ok("valid-any-path", "GET", "/foo/bar?password="+p+"&user="+u),
		ok("valid-head", "HEAD", "/?user="+u+"&password="+p),
		fail("wrong-password", "/?user="+u+"&password="+p+"x", 401, bodyInvalid),
		fail("unknown-user", "/?user="+unknown+"&password="+p, 401, bodyInvalid),
		fail("missing-parameters", "/", 401, bodyNoUser),
		fail("missing-password", "/?user="+u, 401, bodyNoUser),
		fail("missing-user", "/?password="+p, 401, bodyNoUser),
		fail("empty-user", "/?user=&password="+p, 401, bodyNoUser),
		fail("empty-password", "/?user="+u+"&password=", 401, bodyNoUser),
		fail("user-with-slash", "/?user="+u+"/../"+u+"&password="+p, 401, bodyInvalid),
		fail("user-dotdot", "/?user=..&password="+p, 401, bodyInvalid),
		fail("user-absolute-path", "/?user=%2Fetc%2Fpasswd&password="+p, 401, bodyInvalid),
		fail("user-nul", "/?user="+u+"%00&password="+p, 401, bodyInvalid),
		fail("password-nul", "/?user="+u+"&password="+p+"%00", 401, bodyInvalid),
		fail("user-64k", "/?user="+big+"&password="+p, 401, bodyInvalid),
		fail("password-64k", "/?user="+u+"&password="+big, 401, bodyInvalid),
		fail("duplicate-user", "/?user="+u+"&user="+unknown+"&password="+p, 400, bodyBad),
		fail("duplicate-password", "/?user="+u+"&password=x&password="+p, 400, bodyBad),
		fail("bad-percent-encoding", "/?user="+u+"&password="+p+"&x=%zz", 400, bodyBad),
		{Name: "method-post", Method: "POST", Target: "/?user=" + u + "&password=" + p, WantStatus: 405, WantBody: bodyMethod, WantHeader: map[string]string{"Allow": allow}},
		{Name: "method-options-asterisk", Method: "OPTIONS", Target: "*", WantStatus: 405, WantBody: bodyMethod, WantHeader: map[string]string{"Allow": allow}},
	}
	return cs
}

// VectorCases turns the shared vectors (service/testdata/vectors.tsv) into
// cases; they need a guest loaded with service/testdata/store.img.
func VectorCases(vs []vectors.Vector) []Case {
	out := make([]Case, 0, len(vs))
	for _, v := range vs {
		c := Case{Name: v.Name, Method: v.Method, Target: v.Target, WantStatus: v.Status, WantBody: v.Body}
		if v.Status == http.StatusMethodNotAllowed {
			c.WantHeader = map[string]string{"Allow": allow}
		}
		out = append(out, c)
	}
	return out
}

// Run sends every case to baseURL (http://HOST:PORT; its path is ignored)
// on a fresh connection each and reports. It returns an error only for a
// bad URL or a cancelled ctx (with the results so far).
func Run(ctx context.Context, baseURL string, cases []Case, opts Options) (Report, error) {
	host, err := hostPort(baseURL)
	if err != nil {
		return Report{}, err
	}
	if opts.Guest == "" {
		opts.Guest = host
	}
	if opts.Dial == nil {
		opts.Dial = (&net.Dialer{}).DialContext
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Parallel < 1 {
		opts.Parallel = DefaultParallel
	}
	rep := Report{Guest: opts.Guest, URL: baseURL, Started: time.Now()}
	// Cases run Parallel at a time; results keep the cases' order. Once
	// one case cannot even connect, the guest is unreachable: the cases
	// not yet started are reported with that cause instead of each
	// waiting out its own timeout (22 × 10 s for a dead guest).
	results := make([]Result, len(cases))
	done := make([]bool, len(cases))
	var (
		mu          sync.Mutex
		unreachable error
		wg          sync.WaitGroup
	)
	sem := make(chan struct{}, opts.Parallel)
	var ctxErr error
	for i, c := range cases {
		if ctxErr = ctxDone(ctx); ctxErr != nil {
			break
		}
		sem <- struct{}{}
		mu.Lock()
		cause := unreachable
		mu.Unlock()
		if cause != nil {
			<-sem
			results[i], done[i] = notTried(c, cause), true
			continue
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			res, err := runCase(ctx, host, c, opts)
			var de *dialError
			if errors.As(err, &de) {
				mu.Lock()
				if unreachable == nil {
					unreachable = err
				}
				mu.Unlock()
			}
			results[i], done[i] = res, true
		}()
	}
	wg.Wait()
	for i := range cases {
		if done[i] {
			rep.Results = append(rep.Results, results[i])
		}
	}
	finish(&rep)
	if ctxErr != nil {
		return rep, fmt.Errorf("check %s: %w", opts.Guest, ctxErr)
	}
	return rep, nil
}

// notTried is a case skipped because the guest could not be reached.
func notTried(c Case, cause error) Result {
	msg := "not tried, the guest is unreachable: " + cause.Error()
	return Result{Name: c.Name, Request: c.Method + " " + redact(c.Target), Expected: describe(c.WantStatus, c.WantBody, c.WantHeader),
		Got: "error: " + msg, Error: msg}
}

// dialError is a case that could not connect: the guest, not the case,
// is what failed.
type dialError struct {
	host string
	err  error
}

func (e *dialError) Error() string { return fmt.Sprintf("dial %s: %v", e.host, e.err) }
func (e *dialError) Unwrap() error { return e.err }

// RunAll checks each guest (its base URL in urls, by name in names) with
// cases, at most parallel guests at a time (default 4), and reports in
// the order given; done, if set, is called as each guest's report is
// complete (progress for people; it may be called from several
// goroutines, one at a time).
func RunAll(ctx context.Context, names, urls []string, cases []Case, opts Options, parallel int, done func(Report)) ([]Report, error) {
	if len(names) != len(urls) {
		return nil, fmt.Errorf("check: %d names for %d URLs", len(names), len(urls))
	}
	if parallel < 1 {
		parallel = 4
	}
	reports := make([]Report, len(urls))
	errs := make([]error, len(urls))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, parallel)
	for i := range urls {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			o := opts
			o.Guest = names[i]
			reports[i], errs[i] = Run(ctx, urls[i], cases, o)
			if done != nil && errs[i] == nil {
				mu.Lock()
				done(reports[i])
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return reports, fmt.Errorf("checking %s: %w", names[i], err)
		}
	}
	return reports, nil
}

// ctxDone is ctx.Err, also when the deadline has passed but ctx's timer
// has not fired yet (a case cut by the same deadline returns first).
func ctxDone(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Before(dl) {
		return context.DeadlineExceeded
	}
	return nil
}

func finish(rep *Report) {
	rep.Passed, rep.Failed = 0, 0
	for _, r := range rep.Results {
		if r.Pass {
			rep.Passed++
		} else {
			rep.Failed++
		}
	}
	rep.Pass = rep.Failed == 0 && len(rep.Results) > 0
	rep.DurationMS = ms(time.Since(rep.Started))
}

func hostPort(baseURL string) (string, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return "", fmt.Errorf("check: base URL %q: %w", baseURL, err)
	}
	if u.Scheme != "http" || u.Host == "" {
		return "", fmt.Errorf("check: base URL %q: want http://HOST[:PORT]", baseURL)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "80"), nil
	}
	return u.Host, nil
}

func runCase(ctx context.Context, host string, c Case, opts Options) (Result, error) {
	res := Result{
		Name:     c.Name,
		Request:  c.Method + " " + redact(c.Target),
		Expected: describe(c.WantStatus, c.WantBody, c.WantHeader),
	}
	start := time.Now()
	status, hdr, body, err := Do(ctx, opts.Dial, host, c.Method, c.Target, opts.Timeout)
	// A guest whose PBKDF2 slots are full answers 503 with Retry-After
	// (service/README.md): wait as told and ask again, a few times.
	for try := 0; try < busyRetries && err == nil && c.WantStatus != http.StatusServiceUnavailable; try++ {
		after, busy := retryAfter(status, hdr)
		if !busy {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(jittered(after)):
		}
		status, hdr, body, err = Do(ctx, opts.Dial, host, c.Method, c.Target, opts.Timeout)
	}
	res.Duration = time.Since(start)
	res.DurationMS = ms(res.Duration)
	if err != nil {
		res.Error = err.Error()
		res.Got = "error: " + err.Error()
		return res, err
	}
	got := map[string]string{}
	for k := range c.WantHeader {
		got[k] = hdr.Get(k)
	}
	res.Got = describe(status, body, got)
	res.Pass = res.Got == res.Expected
	return res, nil
}

// maxBody bounds what a misbehaving guest can make the checker read.
const maxBody = 1 << 20

// Do sends one raw HTTP/1.1 request (the target exactly as given) on a new
// connection and returns the answer.
func Do(ctx context.Context, dial DialFunc, host, method, target string, timeout time.Duration) (int, http.Header, string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := dial(ctx, "tcp", host)
	if err != nil {
		return 0, nil, "", &dialError{host: host, err: err}
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Closing on cancel unblocks a read the deadline would not cut short.
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: labctl-check\r\nConnection: close\r\n\r\n", method, target, host)
	if err := w.Flush(); err != nil {
		return 0, nil, "", fmt.Errorf("send to %s: %w", host, err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: method})
	if err != nil {
		return 0, nil, "", fmt.Errorf("read answer from %s: %w", host, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return 0, nil, "", fmt.Errorf("read body from %s: %w", host, err)
	}
	if len(b) > maxBody {
		return 0, nil, "", fmt.Errorf("read body from %s: over %d bytes", host, maxBody)
	}
	return resp.StatusCode, resp.Header, string(b), nil
}

func describe(status int, body string, hdr map[string]string) string {
	s := strconv.Itoa(status) + " " + strconv.Quote(truncate(body, 200))
	// Stable order: the only header checked today is Allow.
	for _, k := range []string{"Allow"} {
		if v, ok := hdr[k]; ok {
			s += " " + k + ": " + strconv.Quote(v)
		}
	}
	return s
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// redact hides password values (and bounds the length) so reports and
// JUnit files can be published.
func redact(target string) string {
	path, q, ok := strings.Cut(target, "?")
	if !ok {
		return truncate(target, 200)
	}
	pairs := strings.Split(q, "&")
	for i, p := range pairs {
		k, _, _ := strings.Cut(p, "=")
		if dk, err := url.QueryUnescape(k); err == nil && dk == "password" || k == "password" {
			pairs[i] = k + "=REDACTED"
		}
	}
	return truncate(path+"?"+strings.Join(pairs, "&"), 200)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// RefusalCases are the probe cases that need no valid password: each
// must be refused. The password sent is one no user can have (the guest
// refuses an empty one before looking it up, so it is not empty).
func RefusalCases(user string) []Case {
	var out []Case
	for _, c := range ProbeCases(user, "labctl-no-such-password") {
		if c.WantStatus != http.StatusOK {
			out = append(out, c)
		}
	}
	return out
}
