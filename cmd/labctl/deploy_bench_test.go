package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/service/guest"
)

func benchSpec(b *testing.B) string {
	p := filepath.Join(b.TempDir(), "lab.yaml")
	// Cheap hashing: the benchmarks time labctl, not PBKDF2.
	if err := os.WriteFile(p, []byte("users:\n  iterations: 1000\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkDeployOneGuest times deploy → healthy (from dom0 and the host)
// for one guest on a provisioned sim lab; the guest is destroyed between
// iterations. Also reports the guest's resident memory.
func BenchmarkDeployOneGuest(b *testing.B) {
	l, fresh := benchLab(b, false)
	spec := benchSpec(b)
	fresh()
	l.MustRun("deploy", "--target", "sim", "-f", spec)
	rss := 0
	for b.Loop() {
		b.StopTimer()
		pid := procs.ReadPidfile(filepath.Join(l.StateDir(), "guests", "auth-1", "guest.pid"))
		if kb, err := guest.ResidentKB(pid); err == nil {
			rss = kb
		}
		l.MustRun("destroy", "auth-1", "--target", "sim", "-f", spec)
		b.StartTimer()
		l.MustRun("deploy", "--target", "sim", "-f", spec)
	}
	b.ReportMetric(float64(rss), "guest-rss-KB")
}

// BenchmarkDeployGuests times N guests from none to healthy.
func BenchmarkDeployGuests(b *testing.B) {
	for _, n := range []int{1, 10, 50} {
		b.Run("N="+strconv.Itoa(n), func(b *testing.B) {
			l, fresh := benchLab(b, false)
			spec := benchSpec(b)
			fresh()
			l.MustRun("deploy", "--target", "sim", "-f", spec)
			for b.Loop() {
				b.StopTimer()
				// Back to no guests: scale to one (prune), destroy it.
				l.MustRun("deploy", "--target", "sim", "-f", spec, "--replicas", "1")
				l.MustRun("destroy", "auth-1", "--target", "sim", "-f", spec)
				b.StartTimer()
				l.MustRun("deploy", "--target", "sim", "-f", spec, "--replicas", fmt.Sprint(n))
			}
		})
	}
}

// BenchmarkUp times labctl up --target sim from nothing to a healthy,
// checked guest (sim up, provision, users image, deploy, check).
func BenchmarkUp(b *testing.B) {
	l, _ := benchLab(b, false)
	spec := benchSpec(b)
	for b.Loop() {
		b.StopTimer()
		l.MustRun("down", "--target", "sim", "-f", spec)
		b.StartTimer()
		l.MustRun("up", "--target", "sim", "-f", spec)
	}
}
