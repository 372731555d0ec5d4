package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/vmctl"
	"github.com/vishvananda/netlink"
)

var (
	buildOnce sync.Once
	builtExe  string
	buildErr  error
)

// realLabctl builds the labctl binary once: benchmarks time the real
// command, not the test binary standing in for it.
func realLabctl(b *testing.B) string {
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "labctl-bench")
		if err != nil {
			buildErr = err
			return
		}
		builtExe = filepath.Join(dir, "labctl")
		// Built the way scripts/up.sh and the Vagrantfile build it (static).
		cmd := exec.Command("go", "build", "-o", builtExe, ".")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = err
			b.Logf("%s", out)
		}
	})
	if buildErr != nil {
		b.Fatal(buildErr)
	}
	return builtExe
}

// benchLab is a lab whose namespaces and state are re-created for every
// iteration. The machine's tool-version cache (<state root>/tools.json)
// stays, as it does for every provision but a machine's first; firstRun
// removes it too.
func benchLab(b *testing.B, firstRun bool) (*labtest.Lab, func()) {
	l := labtest.New(b, "lb", realLabctl(b))
	fresh := func() {
		ctx := context.Background()
		if err := vmctl.SimDown(ctx, l.Name, discard()); err != nil {
			b.Fatal(err)
		}
		os.RemoveAll(l.StateDir())
		if firstRun {
			os.Remove(filepath.Join(l.StateRoot, "tools.json"))
		}
		l.MustRun("sim", "up")
		// The kernel destroys the previous iteration's namespaces in a
		// workqueue, seconds of CPU on two cores: let it finish, so the
		// timed run measures itself and not that cleanup.
		time.Sleep(300 * time.Millisecond)
	}
	return l, fresh
}

// BenchmarkProvisionCold times `labctl provision --target sim` on a fresh
// simulated dom0 (the whole command: start, spec, every step in dom0).
func BenchmarkProvisionCold(b *testing.B) { benchCold(b, false) }

// BenchmarkProvisionFirstRun is a cold provision on a machine labctl has
// never run on: preflight asks dnsmasq and iptables for their versions.
func BenchmarkProvisionFirstRun(b *testing.B) { benchCold(b, true) }

func benchCold(b *testing.B, firstRun bool) {
	l, fresh := benchLab(b, firstRun)
	for b.Loop() {
		b.StopTimer()
		fresh()
		b.StartTimer()
		l.MustRun("provision", "--target", "sim")
	}
}

// BenchmarkProvisionShellBaseline times the same steps as a shell script
// of ip/sysctl/iptables/dnsmasq commands, run in the fresh dom0.
func BenchmarkProvisionShellBaseline(b *testing.B) {
	benchScript(b, "baseline-provision.sh", func(script, dir, dom0 string) []string {
		return []string{"ip", "netns", "exec", dom0, "sh", script, dir}
	})
}

// BenchmarkProvisionShellFromHost times the same commands issued from the
// host into dom0's namespace, command by command.
func BenchmarkProvisionShellFromHost(b *testing.B) {
	benchScript(b, "baseline-provision-from-host.sh", func(script, dir, dom0 string) []string {
		return []string{"sh", script, dir, dom0}
	})
}

// benchScript times a baseline script of scripts/testdata (shared with
// scripts/bench-cli.sh) on a fresh dom0 per iteration; argv says how to
// run it.
func benchScript(b *testing.B, name string, argv func(script, dir, dom0 string) []string) {
	l, fresh := benchLab(b, false)
	script, err := filepath.Abs(filepath.Join("..", "..", "scripts", "testdata", name))
	if err != nil {
		b.Fatal(err)
	}
	if _, err := os.Stat(script); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		fresh()
		cmd := argv(script, filepath.Join(l.StateDir(), "baseline"), l.Dom0NS())
		b.StartTimer()
		out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput()
		b.StopTimer()
		if err != nil {
			b.Fatalf("baseline: %v\n%s", err, out)
		}
		// The baseline's dnsmasq is not labctl's: stop it with the lab.
		vmctl.KillNetnsProcs(context.Background(), l.Dom0NS(), discard())
		b.StartTimer()
	}
}

// BenchmarkProvisionConverged times a re-run on a converged lab.
func BenchmarkProvisionConverged(b *testing.B) {
	l, fresh := benchLab(b, false)
	fresh()
	l.MustRun("provision", "--target", "sim")
	for b.Loop() {
		out := l.MustRun("provision", "--target", "sim")
		if !strings.Contains(out, "nothing changed") {
			b.Fatalf("converged run changed something:\n%s", out)
		}
	}
}

// BenchmarkTeardown times `labctl teardown --target sim` of a lab that
// was cold-provisioned on a fresh dom0 (no guests): issue 13 holds it
// against BenchmarkProvisionCold.
func BenchmarkTeardown(b *testing.B) { benchTeardown(b, 0) }

// BenchmarkTeardown100Guests times the teardown of a lab with 100 guests
// deployed: the guests' stops, then the network.
func BenchmarkTeardown100Guests(b *testing.B) { benchTeardown(b, 100) }

func benchTeardown(b *testing.B, guests int) {
	l, fresh := benchLab(b, false)
	spec := filepath.Join(b.TempDir(), "lab.yaml")
	// Cheap hashing and a range that holds the guests.
	if err := os.WriteFile(spec, []byte("users:\n  iterations: 1000\nnetwork:\n  dhcp:\n    start: 192.168.77.3\n    end: 192.168.77.254\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		b.StopTimer()
		fresh()
		l.MustRun("provision", "--target", "sim", "-f", spec)
		if guests > 0 {
			l.MustRun("deploy", "--target", "sim", "-f", spec, "--replicas", strconv.Itoa(guests))
		}
		b.StartTimer()
		l.MustRun("teardown", "--target", "sim", "-f", spec)
	}
}

// BenchmarkBridgeDelete times the kernel's delete of an empty bridge in a
// fresh dom0, over netlink from this process: the floor under any
// teardown of the lab's bridge (an RCU grace period in the bridge's
// unregister), whoever deletes it.
func BenchmarkBridgeDelete(b *testing.B) {
	l, fresh := benchLab(b, false)
	fresh()
	h, err := vmctl.HandleAt(l.Dom0NS())
	if err != nil {
		b.Fatal(err)
	}
	defer h.Close()
	for b.Loop() {
		b.StopTimer()
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "brbench"}}
		if err := h.LinkAdd(br); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if err := h.LinkDel(br); err != nil {
			b.Fatal(err)
		}
	}
}
