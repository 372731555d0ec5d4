package check

import (
	"context"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
)

// TestBusyRetried: a guest that answers 503 with Retry-After (its PBKDF2
// slots full) is asked again as told, by Load and by Run; one that stays
// busy is an error.
func TestBusyRetried(t *testing.T) {
	var busyLeft atomic.Int64
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if busyLeft.Add(-1) >= 0 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("Busy, retry later\n"))
			return
		}
		w.Write([]byte("No user given\n"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	url := "http://" + ln.Addr().String() + "/"

	busyLeft.Store(3)
	res, err := Load(context.Background(), LoadConfig{URL: url, Requests: 10, Concurrency: 1})
	if err != nil || res.Errors != 0 || res.Busy != 3 {
		t.Fatalf("load with 3 busy answers: %+v %v", res, err)
	}
	busyLeft.Store(100)
	res, _ = Load(context.Background(), LoadConfig{URL: url, Requests: 1, Concurrency: 1})
	if res.Errors != 1 || res.Busy != busyRetries {
		t.Fatalf("load against a guest that stays busy: %+v", res)
	}

	busyLeft.Store(2)
	rep, err := Run(context.Background(), url, []Case{{Name: "health", Method: "GET", Target: "/", WantStatus: 200, WantBody: "No user given\n"}}, Options{})
	if err != nil || rep.Failed != 0 {
		t.Fatalf("check with 2 busy answers: %+v %v", rep, err)
	}
	busyLeft.Store(100)
	rep, _ = Run(context.Background(), url, []Case{{Name: "health", Method: "GET", Target: "/", WantStatus: 200, WantBody: "No user given\n"}}, Options{})
	if rep.Failed != 1 {
		t.Fatalf("check against a guest that stays busy passed: %+v", rep)
	}
}
