package main

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/labctl/labctl/internal/flood"
	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/vmctl"
)

// The fault suite's cases beyond kills and full disks (fault_test.go).

// expectFail runs verb (with extra args) and wants it refused with want in
// its output, dom0 left as snapshotted.
func (f *faults) expectFail(before, when, want string, verb string, extra ...string) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := f.command(ctx, verb, extra...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), want) {
		f.t.Fatalf("%s: %s exited %v, want a refusal naming %q:\n%s", when, verb, err, want, out)
	}
	f.faults++
	f.compare(before, when)
}

// preflightRefusals: each case used to fail late, after forwarding and NAT
// had changed (issue 10, "smaller, same spirit").
func (f *faults) preflightRefusals(before string) {
	t, ns := f.t, f.l.Dom0NS()

	// A rival DHCP server bound to no device holds UDP :67.
	pid := filepath.Join(t.TempDir(), "rival.pid")
	labtest.Exec(t, ns, "dnsmasq", "--conf-file=/dev/null", "--port=0", "--dhcp-range=10.99.0.10,10.99.0.20",
		"--pid-file="+pid, "--user=root")
	withRival := f.snapshot()
	f.expectFail(withRival, "rival DHCP server", "dhcp port 67", "provision")
	if p := procs.ReadPidfile(pid); p > 0 {
		syscall.Kill(p, syscall.SIGKILL)
		for i := 0; i < 100 && procs.Alive(p); i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	f.compare(before, "after the rival DHCP server")

	// A link of the bridge's name that is not a bridge.
	f.spec = fastSpec(t, "network:\n  bridge: brx\n")
	labtest.Exec(t, ns, "ip", "link", "add", "brx", "type", "veth", "peer", "name", "brxp")
	withDummy := f.snapshot()
	f.expectFail(withDummy, "non-bridge link of the bridge's name", "not a bridge", "provision")
	labtest.Exec(t, ns, "ip", "link", "del", "brx")
	f.spec = fastSpec(t, "")
	f.compare(before, "after the non-bridge link")

	// The same lab provisioned from another state directory: the second
	// must name the first, not end in "Address already in use".
	other := filepath.Join(t.TempDir(), "other-state")
	if err := os.Mkdir(other, 0o711); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	first := exec.CommandContext(ctx, f.l.Exe, "provision", "--target", "sim", "-f", f.spec, "--lab", f.l.Name, "--state-dir", other)
	first.Env = append(os.Environ(), f.l.Env...)
	if out, err := first.CombinedOutput(); err != nil {
		t.Fatalf("provision from %s: %v\n%s", other, err, out)
	}
	provisioned := f.snapshot()
	f.expectFail(provisioned, "same lab, two state directories", "another state directory, "+other, "provision")
	down := exec.CommandContext(ctx, f.l.Exe, "teardown", "--target", "sim", "--lab", f.l.Name, "--state-dir", other)
	down.Env = first.Env
	if out, err := down.CombinedOutput(); err != nil {
		t.Fatalf("teardown from %s: %v\n%s", other, err, out)
	}
	f.compare(before, "after the second state directory")
}

// stateTree lists every file under the state root with its mode, size,
// mtime and digest, leaving out what daemons write on their own (dnsmasq's
// leases and log, the guests' console logs).
func (f *faults) stateTree() string {
	var b strings.Builder
	err := filepath.WalkDir(f.l.StateRoot, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if strings.HasSuffix(name, ".log") || strings.HasSuffix(name, ".leases") || name == "filler" {
			return nil
		}
		st, err := os.Lstat(p)
		if err != nil {
			return err
		}
		sum := ""
		if st.Mode().IsRegular() {
			c, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			sum = fmt.Sprintf("%x", sha256.Sum256(c))
		}
		fmt.Fprintf(&b, "%s %v %d %d %s\n", strings.TrimPrefix(p, f.l.StateRoot), st.Mode(), st.Size(), st.ModTime().UnixNano(), sum)
		return nil
	})
	if err != nil {
		f.t.Fatal(err)
	}
	return b.String()
}

// readOnly: status, plans, doctor, users list and a rejected users add
// leave the state directory exactly as it was; status during a deploy
// waits for it instead of failing "busy".
func (f *faults) readOnly() {
	t := f.t
	tree := f.stateTree()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, c := range [][]string{
		{"status"}, {"provision", "--plan"}, {"deploy", "--plan"}, {"doctor"},
		{"users", "list"}, {"users", "add", "bad name", "--password-stdin"}, {"users", "remove", "nobody"},
	} {
		cmd := f.command(ctx, c[0], c[1:]...)
		cmd.Stdin = strings.NewReader("secret-password\n")
		out, err := cmd.CombinedOutput()
		if c[0] == "users" && len(c) > 2 && err == nil {
			t.Fatalf("labctl %v succeeded, want it refused:\n%s", c, out)
		}
		if after := f.stateTree(); after != tree {
			f.lost++
			t.Fatalf("labctl %v (exit %v) changed the state directory:\n%s", c, err, lineDiff(tree, after))
		}
		f.faults++
	}

	// A deploy that takes a while (a second guest to boot), and status
	// started while it holds the lock.
	f.spec = fastSpec(t, "guests:\n  replicas: 2\n")
	deploy := f.command(ctx, "deploy")
	var dout strings.Builder
	deploy.Stdout, deploy.Stderr = &dout, &dout
	if err := deploy.Start(); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(f.l.StateDir(), "lock")
	for i := 0; i < 200 && !lockHeld(lock); i++ {
		time.Sleep(5 * time.Millisecond)
	}
	out, _ := f.command(ctx, "status").CombinedOutput()
	if err := deploy.Wait(); err != nil {
		t.Fatalf("deploy beside status: %v\n%s", err, dout.String())
	}
	if strings.Contains(string(out), "busy") {
		t.Fatalf("status during a deploy: %s", out)
	}
	f.faults++
}

// lockHeld reports whether another process holds path's flock.
func lockHeld(path string) bool {
	fh, err := os.Open(path)
	if err != nil {
		return false
	}
	defer fh.Close()
	if err := syscall.Flock(int(fh.Fd()), syscall.LOCK_SH|syscall.LOCK_NB); err != nil {
		return true
	}
	syscall.Flock(int(fh.Fd()), syscall.LOCK_UN)
	return false
}

// floodGuest: 1,000 wrong-password requests at 200 concurrency from the
// host's side against a guest at the product's PBKDF2 cost, while a valid
// login and /health are timed. Bounded in count; every request must be
// answered and the guest healthy afterwards. The figures go to the
// summary line (targets: valid login ≤ 1 s, /health ≤ 100 ms).
func (f *faults) floodGuest() {
	t := f.t
	// The product cost: a spec without fastSpec's users section, and the
	// users directory emptied so that deploy seeds the demo user at it.
	f.spec = filepath.Join(t.TempDir(), "product-cost.yaml")
	if err := os.WriteFile(f.spec, []byte("guests:\n  replicas: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	users := filepath.Join(f.l.StateDir(), "users")
	if err := os.RemoveAll(users); err != nil {
		t.Fatal(err)
	}
	// The suite's later deploys seed the demo user at fastSpec's cost again.
	defer os.RemoveAll(users)
	f.run("deploy")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := f.command(ctx, "status", "--json").Output()
	var r provision.GuestsResult
	if jerr := json.Unmarshal(out, &r); jerr != nil || len(r.Guests) == 0 {
		t.Fatalf("status --json: %v %v\n%s", err, jerr, out)
	}
	base := "http://" + r.Guests[0].IP + ":8088"
	res, err := flood.Run(ctx, flood.Config{Base: base, Dial: vmctl.DialIn(f.l.HostNS()), Total: 1000, Concurrency: 200,
		User: "john", Password: "password"})
	if err != nil {
		t.Fatalf("flood: %v", err)
	}
	if n := res.Codes[-1]; n > 0 || len(res.Errs) > 0 {
		t.Fatalf("flood: %d requests and the probes %v got no answer: %v", n, res.Errs, res)
	}
	t.Logf("flood: %v", res)
	f.flood = fmt.Sprintf("valid login max %v, /health max %v", flood.Worst(res.Logins).Round(time.Millisecond), flood.Worst(res.Healths).Round(time.Millisecond))
	f.faults++
	f.run("status")
}
