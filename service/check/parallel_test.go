package check

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A guest nobody can connect to costs at most Parallel dials: the cases
// not yet started are reported "not tried" with the dial's cause.
func TestUnreachableStopsDialing(t *testing.T) {
	var dials atomic.Int32
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("connect: no route to host")
	}
	cases := ProbeCases("john", "password")
	rep, err := Run(context.Background(), "http://192.0.2.1:8088", cases, Options{Dial: dial, Parallel: 4})
	if err != nil {
		t.Fatal(err)
	}
	if n := dials.Load(); n > 4 {
		t.Errorf("%d dials to an unreachable guest, want at most 4", n)
	}
	if len(rep.Results) != len(cases) || rep.Passed != 0 {
		t.Fatalf("report: %d results, %d passed; want %d results, none passed", len(rep.Results), rep.Passed, len(cases))
	}
	notTried := 0
	for _, r := range rep.Results {
		if strings.Contains(r.Error, "not tried, the guest is unreachable: dial 192.0.2.1:8088: connect: no route to host") {
			notTried++
		}
	}
	if notTried < len(cases)-4 {
		t.Errorf("%d cases say why they were not tried, want at least %d:\n%+v", notTried, len(cases)-4, rep.Results)
	}
}

// Cases in flight at once still report in the cases' order, and every
// guest of RunAll in the order given, each announced once.
func TestParallelOrder(t *testing.T) {
	base := serve(t, fixtureHandler(t))
	cases := ProbeCases("john", "password")
	names := []string{"g1", "g2", "g3"}
	var announced []string
	reps, err := RunAll(context.Background(), names, []string{base, base, base}, cases, Options{Parallel: 8}, 2, func(r Report) {
		announced = append(announced, r.Guest)
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(announced) != len(names) {
		t.Errorf("announced %v, want each of %v once", announced, names)
	}
	for i, rep := range reps {
		if rep.Guest != names[i] || !rep.Pass {
			t.Fatalf("report %d: guest %s pass %v, want %s passing; failures %+v", i, rep.Guest, rep.Pass, names[i], rep.Failures())
		}
		for j, r := range rep.Results {
			if r.Name != cases[j].Name {
				t.Fatalf("%s result %d is %s, want %s", rep.Guest, j, r.Name, cases[j].Name)
			}
		}
	}
}

// The health contract: 401 "No user given" from the real auth handler,
// anything else named.
func TestHealth(t *testing.T) {
	base := serve(t, fixtureHandler(t))
	host := strings.TrimPrefix(base, "http://")
	if err := Health(context.Background(), (&net.Dialer{}).DialContext, host, 5*time.Second); err != nil {
		t.Fatalf("the auth service's health answer: %v", err)
	}
	if err := HealthAnswer(200, "hello john!\n"); err == nil || !strings.Contains(err.Error(), `answered 200 "hello john!\n", want 401 "No user given\n"`) {
		t.Errorf("HealthAnswer(200) = %v", err)
	}
}
