package auth

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/labctl/labctl/service/users"
)

// BenchmarkFlood is issue 10's flood, loopback only and bounded: 1,000
// wrong-password requests at 200 concurrency against a server with the
// guest's limits and the product's PBKDF2 cost, while one client logs in
// validly and another probes health (a credential-free request) in a loop.
// It reports the worst valid-login and health latencies:
//
//	go test -run '^$' -bench Flood -benchtime 1x ./service/auth
func BenchmarkFlood(b *testing.B) {
	cred, err := users.Hash("password", users.DefaultIterations)
	if err != nil {
		b.Fatal(err)
	}
	h, err := NewHandler(MapStore{"john": cred}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Config = NewServer(h, slog.New(slog.NewTextHandler(io.Discard, nil)), DefaultServerConfig())
	srv.Listener = LimitListener(srv.Listener, DefaultServerConfig().MaxConns)
	srv.Start()
	defer srv.Close()
	base := srv.URL
	const total, conc = 1000, 200
	for range b.N {
		tr := &http.Transport{MaxIdleConnsPerHost: conc}
		flood := &http.Client{Transport: tr, Timeout: 60 * time.Second}
		probe := &http.Client{Transport: &http.Transport{}, Timeout: 60 * time.Second}
		codes := map[int]int{}
		var mu sync.Mutex
		jobs := make(chan struct{}, total)
		for range total {
			jobs <- struct{}{}
		}
		close(jobs)
		done := make(chan struct{})
		var wg sync.WaitGroup
		start := time.Now()
		for range conc {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range jobs {
					code := -1
					if resp, err := flood.Get(base + "/?user=john&password=wrong"); err == nil {
						_, _ = io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						code = resp.StatusCode
					}
					mu.Lock()
					codes[code]++
					mu.Unlock()
				}
			}()
		}
		timed := func(url string, want int, out *[]time.Duration) {
			for {
				select {
				case <-done:
					return
				default:
				}
				t0 := time.Now()
				resp, err := probe.Get(url)
				d := time.Since(t0)
				if err != nil {
					b.Errorf("%s: %v", url, err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				mu.Lock()
				if resp.StatusCode == want {
					*out = append(*out, d)
				} else {
					codes[1000+resp.StatusCode]++ // probe answered otherwise
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		}
		var logins, healths []time.Duration
		var pw sync.WaitGroup
		pw.Add(2)
		go func() { defer pw.Done(); timed(base+"/?user=john&password=password", 200, &logins) }()
		go func() { defer pw.Done(); timed(base+"/health", 401, &healths) }()
		wg.Wait()
		flooded := time.Since(start)
		close(done)
		pw.Wait()
		tr.CloseIdleConnections()
		b.ReportMetric(worst(logins).Seconds()*1000, "login-max-ms")
		b.ReportMetric(worst(healths).Seconds()*1000, "health-max-ms")
		fmt.Printf("flood: %d wrong-password requests at %d concurrency in %.1fs, answers %v; valid login n=%d p50=%v max=%v; health n=%d p50=%v max=%v\n",
			total, conc, flooded.Seconds(), codes, len(logins), p50(logins), worst(logins), len(healths), p50(healths), worst(healths))
	}
}

func worst(ds []time.Duration) time.Duration {
	var m time.Duration
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

func p50(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2].Round(time.Millisecond)
}
