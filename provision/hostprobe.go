package provision

import (
	"context"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/labctl/labctl/service/check"
)

// ProbeFromHost asks each guest the contract's cheapest question from the
// host side (dial: the sim's host namespace, or this machine) and records
// the answer in the guest's HostProbe; it returns the guests that did not
// answer, with why. Guests are probed side by side, a few at a time: one
// after another, a hundred guests cost a hundred round trips in a row.
func ProbeFromHost(ctx context.Context, dial check.DialFunc, gs []GuestStatus, port int) []string {
	errs := make([]error, len(gs))
	eachBounded(len(gs), 8, func(i int) { errs[i] = probeOneFromHost(ctx, dial, &gs[i], port) })
	var failed []string
	for i := range gs {
		g := &gs[i]
		if err := errs[i]; err != nil {
			g.HostProbe = err.Error()
			failed = append(failed, g.Name+": "+err.Error())
		} else {
			g.HostProbe = "ok"
		}
	}
	return failed
}

// probeOneFromHost retries, for up to 10 s, a guest dom0 found healthy:
// the host's path may need a moment (ARP, the bridge learning the port),
// and on a loaded machine one failed ARP resolution alone costs 3 s
// ("no route to host"), which a shorter budget would report as final.
func probeOneFromHost(ctx context.Context, dial check.DialFunc, g *GuestStatus, port int) error {
	retry := time.Duration(0)
	if g.Healthy {
		retry = 10 * time.Second
	}
	return probeFromHost(ctx, dial, net.JoinHostPort(g.IP, strconv.Itoa(port)), time.Second, retry)
}

// probeFromHost asks the guest at hostport the health request, each try
// bounded by attempt, trying again for up to retryFor.
func probeFromHost(ctx context.Context, dial check.DialFunc, hostport string, attempt, retryFor time.Duration) error {
	deadline := time.Now().Add(retryFor)
	for {
		err := check.Health(ctx, dial, hostport, attempt)
		if err == nil || !time.Now().Before(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// eachBounded runs f(0) … f(n-1) side by side, at most limit at once, and
// returns when all have.
func eachBounded(n, limit int, f func(i int)) {
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}
