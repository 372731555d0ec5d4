package auth

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/labctl/labctl/internal/flood"
	"github.com/labctl/labctl/service/users"
)

// BenchmarkFlood is issue 10's flood, loopback only and bounded: 1,000
// wrong-password requests at 200 concurrency against a server with the
// guest's limits and the product's PBKDF2 cost, while one client logs in
// validly and another probes health (a credential-free request) in a loop.
// "repeat" sends one wrong password over and over (coalesced and
// remembered, failcache.go); "distinct" a new one each time, so every
// request costs a PBKDF2 run and the slots overflow into 503s. It reports
// the worst valid-login and health latencies:
//
//	go test -run '^$' -bench Flood -benchtime 1x ./service/auth
func BenchmarkFlood(b *testing.B) {
	cred, err := users.Hash("password", users.DefaultIterations)
	if err != nil {
		b.Fatal(err)
	}
	for _, distinct := range []bool{false, true} {
		name := "repeat"
		if distinct {
			name = "distinct"
		}
		b.Run(name, func(b *testing.B) {
			for range b.N {
				// A fresh server each time: nothing remembered between runs.
				h, err := NewHandler(MapStore{"john": cred}, slog.New(slog.NewTextHandler(io.Discard, nil)))
				if err != nil {
					b.Fatal(err)
				}
				srv := httptest.NewUnstartedServer(h)
				srv.Config = NewServer(h, slog.New(slog.NewTextHandler(io.Discard, nil)), DefaultServerConfig())
				srv.Listener = LimitListener(srv.Listener, DefaultServerConfig().MaxConns)
				srv.Start()
				r, err := flood.Run(context.Background(), flood.Config{Base: srv.URL, Total: 1000, Concurrency: 200,
					Distinct: distinct, User: "john", Password: "password"})
				srv.Close()
				if err != nil {
					b.Fatal(err)
				}
				if n := r.Codes[-1]; n > 0 || len(r.Errs) > 0 {
					b.Errorf("%d flood requests and probes %v failed without an answer", n, r.Errs)
				}
				b.ReportMetric(flood.Worst(r.Logins).Seconds()*1000, "login-max-ms")
				b.ReportMetric(flood.Worst(r.Healths).Seconds()*1000, "health-max-ms")
				fmt.Printf("flood %s: %v\n", name, r)
			}
		})
	}
}
