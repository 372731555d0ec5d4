package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/netsetup"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/vmctl"
	"github.com/vishvananda/netlink"
)

func provisionJSON(t *testing.T, l *labtest.Lab, args ...string) provision.Result {
	t.Helper()
	out, errOut, code := l.Run(append([]string{"provision", "--target", "sim", "--json"}, args...)...)
	var r provision.Result
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("provision output is not JSON (exit %d): %v\n%s\n%s", code, err, out, errOut)
	}
	if code != 0 || !r.OK {
		t.Fatalf("provision failed (exit %d): %s\n%s", code, r.Error, errOut)
	}
	return r
}

func dnsmasqPid(t *testing.T, l *labtest.Lab) int {
	t.Helper()
	return procs.ReadPidfile(filepath.Join(l.StateDir(), "dnsmasq", "dnsmasq.pid"))
}

func TestProvisionTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	r1 := provisionJSON(t, l)
	if !r1.Changed {
		t.Fatal("first provision reported no change")
	}
	snap1 := labtest.Snapshot(t, l.Dom0NS())
	pid1 := dnsmasqPid(t, l)

	r2 := provisionJSON(t, l)
	if r2.Changed {
		t.Fatalf("second provision changed something: %+v", r2.Steps)
	}
	for _, s := range r2.Steps {
		if s.Status != provision.StatusOK {
			t.Errorf("second run: step %s is %s", s.Step, s.Status)
		}
	}
	if snap2 := labtest.Snapshot(t, l.Dom0NS()); snap2 != snap1 {
		t.Errorf("state differs after a second provision:\n--- first\n%s\n--- second\n%s", snap1, snap2)
	}
	if pid2 := dnsmasqPid(t, l); pid2 != pid1 || pid1 == 0 {
		t.Errorf("dnsmasq pid %d → %d: restarted on a converged run", pid1, pid2)
	}
	plan := provisionJSON(t, l, "--plan")
	if len(plan.Drift) != 0 {
		t.Errorf("--plan on a converged lab lists changes: %v", plan.Drift)
	}
	human := l.MustRun("provision", "--target", "sim", "--plan")
	if !strings.Contains(human, "nothing to change") {
		t.Errorf("--plan output does not say nothing changes:\n%s", human)
	}
}

func TestPlanChangesNothing(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	before := labtest.Snapshot(t, l.Dom0NS())
	r := provisionJSON(t, l, "--plan")
	if len(r.Drift) == 0 {
		t.Fatal("--plan on a fresh dom0 lists nothing to change")
	}
	for _, s := range r.Steps {
		if s.Status == provision.StatusChanged {
			t.Errorf("--plan changed step %s", s.Step)
		}
	}
	if after := labtest.Snapshot(t, l.Dom0NS()); after != before {
		t.Errorf("--plan changed dom0:\n--- before\n%s\n--- after\n%s", before, after)
	}
}

// drift is something a user or another tool does to a provisioned dom0.
type drift struct {
	name  string
	apply func(t *testing.T, l *labtest.Lab)
	step  string // the step status must name
}

func drifts() []drift {
	sh := func(cmd ...string) func(t *testing.T, l *labtest.Lab) {
		return func(t *testing.T, l *labtest.Lab) { labtest.Exec(t, l.Dom0NS(), cmd...) }
	}
	return []drift{
		{"br0 deleted", sh("ip", "link", "del", "br0"), "bridge"},
		{"uplink released", sh("ip", "link", "set", "eth1", "nomaster"), "uplink"},
		{"promisc off", sh("ip", "link", "set", "eth1", "promisc", "off"), "promisc"},
		{"ip_forward 0", sh("sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"), "forwarding"},
		{"POSTROUTING flushed", sh("iptables", "-t", "nat", "-F", "POSTROUTING"), "nat"},
		{"NAT rule removed", sh("iptables", "-t", "nat", "-D", "LABCTL-POST", "3"), "nat"},
		{"FORWARD jump removed", sh("iptables", "-D", "FORWARD", "1"), "nat"},
		{"NAT chain removed", sh("sh", "-c", "iptables -t nat -F POSTROUTING && iptables -t nat -F LABCTL-POST && iptables -t nat -X LABCTL-POST"), "nat"},
		{"dnsmasq killed", func(t *testing.T, l *labtest.Lab) {
			pid := dnsmasqPid(t, l)
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			for procs.Alive(pid, "dnsmasq") {
				time.Sleep(5 * time.Millisecond)
			}
		}, "dnsmasq"},
		{"dnsmasq config edited", func(t *testing.T, l *labtest.Lab) {
			p := filepath.Join(l.StateDir(), "dnsmasq", "dnsmasq.conf")
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, append(b, "dhcp-range=10.9.9.1,10.9.9.9\n"...), 0o644); err != nil {
				t.Fatal(err)
			}
		}, "dnsmasq"},
	}
}

// Each drift, in a random order on one lab: status names it and exits 3,
// provision repairs it, status is clean again, and the repaired dom0 equals
// the freshly provisioned one.
func TestDriftDetectedAndRepaired(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	provisionJSON(t, l)
	want := labtest.Snapshot(t, l.Dom0NS())
	seed := uint64(time.Now().UnixNano())
	t.Logf("drift order seed %d", seed)
	ds := drifts()
	rand.New(rand.NewPCG(seed, seed)).Shuffle(len(ds), func(i, j int) { ds[i], ds[j] = ds[j], ds[i] })
	for _, d := range ds {
		d.apply(t, l)
		out, _, code := l.Run("status", "--target", "sim", "--json")
		var st provision.Result
		if err := json.Unmarshal([]byte(out), &st); err != nil {
			t.Fatalf("%s: status output: %v\n%s", d.name, err, out)
		}
		if code != exitDrift || st.OK {
			t.Errorf("%s: status exit %d ok=%v, want exit %d", d.name, code, st.OK, exitDrift)
		}
		named := false
		for _, dr := range st.Drift {
			if strings.HasPrefix(dr, d.step+":") {
				named = true
			}
		}
		if !named {
			t.Errorf("%s: status drift does not name step %s: %v", d.name, d.step, st.Drift)
		}
		r := provisionJSON(t, l)
		if !r.Changed {
			t.Errorf("%s: provision repaired nothing", d.name)
		}
		if _, _, code := l.Run("status", "--target", "sim"); code != 0 {
			t.Errorf("%s: status after repair exits %d", d.name, code)
		}
		got := labtest.Snapshot(t, l.Dom0NS())
		// dnsmasq's pid is part of the process list only by command line.
		if got != want {
			t.Errorf("%s: repaired dom0 differs from the provisioned one:\n--- want\n%s\n--- got\n%s", d.name, want, got)
		}
	}
}

func TestTeardownRestoresSnapshot(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	before := labtest.Snapshot(t, l.Dom0NS())
	provisionJSON(t, l)
	for i := range 2 {
		out, errOut, code := l.Run("teardown", "--target", "sim", "--json")
		if code != 0 {
			t.Fatalf("teardown %d: exit %d\n%s\n%s", i+1, code, out, errOut)
		}
		if after := labtest.Snapshot(t, l.Dom0NS()); after != before {
			t.Fatalf("after teardown %d dom0 differs:\n--- before provision\n%s\n--- after teardown\n%s", i+1, before, after)
		}
	}
	if _, err := os.Stat(filepath.Join(l.StateDir(), provision.JournalFile)); !os.IsNotExist(err) {
		t.Errorf("journal left after teardown: %v", err)
	}
	// A torn-down lab is "not provisioned", not "drifted (N items)".
	_, errOut, code := l.Run("status", "--target", "sim")
	if code != exitDrift || !strings.Contains(errOut, "is not provisioned") {
		t.Errorf("status after teardown: exit %d, want %d saying 'is not provisioned':\n%s", code, exitDrift, errOut)
	}
}

// The spec is edited between provisions (range, lease, NAT off then on,
// another bridge name): teardown still restores what was there.
func TestTeardownAfterSpecEdits(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	before := labtest.Snapshot(t, l.Dom0NS())
	dir := t.TempDir()
	spec := func(body string) string {
		p := filepath.Join(dir, fmt.Sprintf("lab%d.yaml", time.Now().UnixNano()))
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	provisionJSON(t, l)
	provisionJSON(t, l, "-f", spec("network:\n  dhcp:\n    start: 192.168.77.50\n    end: 192.168.77.60\n    lease: 2h\n  nat: false\n"))
	provisionJSON(t, l, "-f", spec("network:\n  bridge: labbr\n"))
	if out := labtest.Exec(t, l.Dom0NS(), "ip", "-o", "link", "show"); strings.Contains(out, " br0:") {
		t.Errorf("old bridge br0 left after renaming it to labbr:\n%s", out)
	}
	l.MustRun("teardown", "--target", "sim")
	if after := labtest.Snapshot(t, l.Dom0NS()); after != before {
		t.Fatalf("after teardown dom0 differs:\n--- before\n%s\n--- after\n%s", before, after)
	}
}

var leaseRE = regexp.MustCompile(`(?i)lease of (\d+\.\d+\.\d+\.\d+) obtained`)

// plugGuest makes a throwaway guest namespace with a veth whose dom0 end
// is a port of br0, and returns the namespace name.
func plugGuest(t *testing.T, l *labtest.Lab, idx int) string {
	t.Helper()
	ns := vmctl.GuestNetns(l.Name, idx)
	labtest.Exec(t, l.HostNS(), "true") // the lab exists
	if out, err := exec_("ip", "netns", "add", ns); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() {
		vmctl.KillNetnsProcs(context.Background(), ns, discard())
		vmctl.DeleteNetns(context.Background(), ns)
	})
	vif := fmt.Sprintf("vif%d.0", idx)
	labtest.Exec(t, l.Dom0NS(), "ip", "link", "add", vif, "type", "veth", "peer", "name", "eth0", "netns", ns)
	labtest.Exec(t, l.Dom0NS(), "ip", "link", "set", vif, "master", "br0", "up")
	labtest.Exec(t, ns, "ip", "link", "set", "lo", "up")
	labtest.Exec(t, ns, "ip", "link", "set", "eth0", "up")
	return ns
}

func dhcp(t *testing.T, ns string) netip.Addr {
	t.Helper()
	out := labtest.Exec(t, ns, "busybox", "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "10", "-T", "1", "-s", "/bin/true")
	m := leaseRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("udhcpc got no lease:\n%s", out)
	}
	return netip.MustParseAddr(m[1])
}

func TestDHCPLeaseAndNAT(t *testing.T) {
	t.Parallel()
	testenvTool(t, "busybox")
	l := newLab(t)
	provisionJSON(t, l)
	guest := plugGuest(t, l, 1)
	ip := dhcp(t, guest)
	lo, hi := netip.MustParseAddr("192.168.77.3"), netip.MustParseAddr("192.168.77.200")
	if ip.Less(lo) || hi.Less(ip) {
		t.Fatalf("lease %s outside the range %s-%s", ip, lo, hi)
	}
	// The lease is in dnsmasq's lease file, under the guest's MAC.
	b, err := os.ReadFile(filepath.Join(l.StateDir(), "dnsmasq", "dnsmasq.leases"))
	if err != nil {
		t.Fatal(err)
	}
	leases, err := netsetup.ParseLeases(b)
	if err != nil {
		t.Fatal(err)
	}
	mac := guestMAC(t, guest)
	if got, ok := netsetup.LeaseFor(leases, mac, time.Now()); !ok || got.IP != ip {
		t.Fatalf("lease file has %v for %s, want %s", leases, mac, ip)
	}

	// NAT: the guest (with the address it leased) reaches a listener on
	// the WAN side, which sees dom0's WAN address as the source.
	labtest.Exec(t, guest, "ip", "addr", "add", ip.String()+"/24", "dev", "eth0")
	labtest.Exec(t, guest, "ip", "route", "add", "default", "via", "192.168.77.2")
	ln := labtest.Listen(t, l.WANNS(), vmctl.SimWANGw.Addr().String()+":0")
	accepted := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- "accept: " + err.Error()
			return
		}
		defer c.Close()
		accepted <- c.RemoteAddr().String()
	}()
	c := labtest.Dial(t, guest, ln.Addr().String())
	defer c.Close()
	select {
	case src := <-accepted:
		host, _, _ := strings.Cut(src, ":")
		if host != vmctl.SimWANDom0.Addr().String() {
			t.Fatalf("WAN listener saw source %s, want dom0's WAN address %s (NAT)", src, vmctl.SimWANDom0.Addr())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("connection from the guest never reached the WAN")
	}
}

// An established TCP connection from the host to dom0's 192.168.77.2 keeps
// working while provision moves the address from eth1 to br0.
func TestConnectionSurvivesAddressMove(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	ln := labtest.Listen(t, l.Dom0NS(), "192.168.77.2:0")
	echo := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			echo <- err
			return
		}
		defer c.Close()
		_, err = io.Copy(c, c)
		echo <- err
	}()
	c := labtest.Dial(t, l.HostNS(), ln.Addr().String())
	rw := bufio.NewReader(c)
	ping := func(msg string) {
		t.Helper()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := fmt.Fprintln(c, msg); err != nil {
			t.Fatalf("write %q: %v", msg, err)
		}
		got, err := rw.ReadString('\n')
		if err != nil || got != msg+"\n" {
			t.Fatalf("echo of %q: %q, %v", msg, got, err)
		}
	}
	ping("before")
	provisionJSON(t, l)
	// The address really moved.
	h, err := vmctl.HandleAt(l.Dom0NS())
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	br, err := h.LinkByName("br0")
	if err != nil {
		t.Fatal(err)
	}
	if addrs, _ := h.AddrList(br, netlink.FAMILY_V4); len(addrs) != 1 {
		t.Fatalf("br0 addresses after provision: %v", addrs)
	}
	ping("after")
	ping("and again")
}

// provision is killed (SIGKILL, whole process group: host side and agent)
// after each step in turn; a re-run converges and teardown still restores
// the pre-provision snapshot.
func TestKilledProvisionConverges(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	before := labtest.Snapshot(t, l.Dom0NS())
	steps := len((&provision.Dom0{}).Steps())
	for cut := 1; cut < steps; cut++ {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		cmd := l.Command(ctx, []string{"LABCTL_TEST_STEP_DELAY=300ms"}, "provision", "--target", "sim")
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stderr)
		seen := 0
		for seen < cut && sc.Scan() {
			if strings.HasPrefix(sc.Text(), "ok ") || strings.HasPrefix(sc.Text(), "changed ") {
				seen++
			}
		}
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
		labtest.WaitGroupGone(t, cmd.Process.Pid)
		cancel()
		if seen != cut {
			t.Fatalf("cut %d: saw only %d steps before provision ended", cut, seen)
		}
		r := provisionJSON(t, l)
		if !r.OK {
			t.Fatalf("cut %d: re-run failed: %s", cut, r.Error)
		}
		if _, _, code := l.Run("status", "--target", "sim"); code != 0 {
			t.Fatalf("cut %d: status after re-run exits %d", cut, code)
		}
		l.MustRun("teardown", "--target", "sim")
		if after := labtest.Snapshot(t, l.Dom0NS()); after != before {
			t.Fatalf("cut %d: after teardown dom0 differs:\n--- before\n%s\n--- after\n%s", cut, before, after)
		}
	}
}

// The sim's provision enters dom0 from labctl's own process: nothing of it
// may land in the namespace labctl runs in, and what it starts runs in dom0.
func TestSimProvisionLeavesOwnNamespaceAlone(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	before := ownNetState(t)
	provisionJSON(t, l)
	if after := ownNetState(t); after != before {
		t.Errorf("provision --target sim changed labctl's own namespace:\n--- before\n%s\n--- after\n%s", before, after)
	}
	var dom0 syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+l.Dom0NS(), &dom0); err != nil {
		t.Fatal(err)
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", dnsmasqPid(t, l)))
	if want := fmt.Sprintf("net:[%d]", dom0.Ino); err != nil || ns != want {
		t.Errorf("dnsmasq runs in %s (%v), want dom0's %s", ns, err, want)
	}
	l.MustRun("teardown", "--target", "sim")
	if after := ownNetState(t); after != before {
		t.Errorf("teardown changed labctl's own namespace:\n--- before\n%s\n--- after\n%s", before, after)
	}
}

// ownNetState is what a provision could change in the test's own network
// namespace: links, IPv4 addresses, forwarding and the rules (without
// their packet counters).
func ownNetState(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, argv := range [][]string{
		{"ip", "-br", "link", "show"},
		{"ip", "-br", "-4", "addr", "show"},
		{"cat", "/proc/sys/net/ipv4/ip_forward"},
		{"iptables-save"},
	} {
		out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if !strings.HasPrefix(line, "#") {
				b.WriteString(counters.ReplaceAllString(line, "") + "\n")
			}
		}
	}
	return b.String()
}

var counters = regexp.MustCompile(`\[\d+:\d+\]`)
