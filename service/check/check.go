// Package check is the conformance probe of the auth service: it sends the
// contract's cases to any guest (the Go reference guest or the OCaml
// unikernel) over raw HTTP/1.1 and reports per case; it also writes JUnit
// XML and generates load.
package check

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
}

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
	rep := Report{Guest: opts.Guest, URL: baseURL, Started: time.Now()}
	for _, c := range cases {
		if err := ctxDone(ctx); err != nil {
			finish(&rep)
			return rep, fmt.Errorf("check %s: %w", opts.Guest, err)
		}
		rep.Results = append(rep.Results, runCase(ctx, host, c, opts))
	}
	finish(&rep)
	return rep, nil
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

func runCase(ctx context.Context, host string, c Case, opts Options) Result {
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
		case <-time.After(after):
		}
		status, hdr, body, err = Do(ctx, opts.Dial, host, c.Method, c.Target, opts.Timeout)
	}
	res.Duration = time.Since(start)
	res.DurationMS = ms(res.Duration)
	if err != nil {
		res.Error = err.Error()
		res.Got = "error: " + err.Error()
		return res
	}
	got := map[string]string{}
	for k := range c.WantHeader {
		got[k] = hdr.Get(k)
	}
	res.Got = describe(status, body, got)
	res.Pass = res.Got == res.Expected
	return res
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
		return 0, nil, "", fmt.Errorf("dial %s: %w", host, err)
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
