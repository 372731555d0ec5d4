package provision

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/labctl/labctl/service/check"
)

// CheckGuests probes the guests with cases, checkGuestsParallel guests at
// a time (each with check.DefaultParallel cases in flight), logging each
// guest as it completes: 250 replicas one after another took minutes in
// silence.
func CheckGuests(ctx context.Context, guests []GuestStatus, cases []check.Case, dial check.DialFunc, log *slog.Logger) ([]check.Report, error) {
	names := make([]string, len(guests))
	urls := make([]string, len(guests))
	for i, g := range guests {
		names[i], urls[i] = g.Name, g.URL
	}
	n := 0
	return check.RunAll(ctx, names, urls, cases, check.Options{Dial: dial}, checkGuestsParallel, func(r check.Report) {
		n++
		log.Info("checked", "guest", r.Guest, "passed", r.Passed, "failed", r.Failed, "ms", fmt.Sprintf("%.0f", r.DurationMS), "done", fmt.Sprintf("%d/%d", n, len(guests)))
	})
}

// checkGuestsParallel bounds the guests probed at once: each guest
// bounds its own PBKDF2 work, so the checker's load on dom0 is what is
// kept small.
const checkGuestsParallel = 4

// SplitDeclared sorts the spec's declared guests (<name>-1 … <name>-N)
// into those running, to probe, and a failed report for each one absent
// or not running: a guest the spec declares and nobody serves is a
// failure, not a smaller green run. Running guests the spec no longer
// declares are still probed (they answer on the lab's bridge).
func SplitDeclared(spec Spec, guests []GuestStatus) ([]GuestStatus, []check.Report) {
	byName := make(map[string]GuestStatus, len(guests))
	for _, g := range guests {
		byName[g.Name] = g
	}
	declared := make(map[string]bool, spec.Guests.Replicas)
	var running []GuestStatus
	var missing []check.Report
	for i := 1; i <= spec.Guests.Replicas; i++ {
		name := fmt.Sprintf("%s-%d", spec.Guests.Name, i)
		declared[name] = true
		g, ok := byName[name]
		if ok && g.State == "running" {
			running = append(running, g)
			continue
		}
		got := "absent"
		if ok {
			got = g.State
			if got == "" {
				got = "unknown"
			}
		}
		missing = append(missing, check.Report{
			Guest: name, URL: g.URL, Failed: 1,
			Results: []check.Result{{
				Name: "running", Request: "status", Expected: "running", Got: got,
				Error: fmt.Sprintf("guest %s is declared by the spec but %s", name, got),
			}},
		})
	}
	for _, g := range guests {
		if !declared[g.Name] && g.State == "running" {
			running = append(running, g)
		}
	}
	return running, missing
}
