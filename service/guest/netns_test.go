package guest

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/service/check"
	"github.com/labctl/labctl/service/vectors"
)

// The helper process: the test binary re-executed inside the guest
// namespace by `ip netns exec`, running Run as `labctl guest` would.
const helperEnv = "LABCTL_GUEST_TEST_HELPER"

func TestGuestProcess(t *testing.T) {
	if os.Getenv(helperEnv) != "1" {
		t.Skip("helper process for the netns tests")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	cfg := Config{
		ImagePath: os.Getenv("LABCTL_GUEST_IMAGE"),
		Interface: os.Getenv("LABCTL_GUEST_IFACE"),
		Hostname:  "testguest",
	}
	if s := os.Getenv("LABCTL_GUEST_STATIC"); s != "" {
		cfg.Static = netip.MustParsePrefix(s)
		cfg.Gateway = netip.MustParseAddr(os.Getenv("LABCTL_GUEST_GATEWAY"))
	}
	if u := os.Getenv("LABCTL_GUEST_LEASE_UNIT"); u != "" {
		testLeaseUnit, _ = time.ParseDuration(u)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	err := Run(ctx, cfg, log, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stdout, "RUN ERROR:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// lab is a pair of uniquely named namespaces joined by a veth: "srv"
// (dom0's role) and "gst" (the guest's), nothing in the root namespace.
type lab struct {
	srv, gst     string
	srvIf        string
	mac          net.HardwareAddr
	srvNS, gstNS netns.NsHandle
}

func run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newLab(t *testing.T) *lab {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "ip")
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	sfx := hex.EncodeToString(b)
	l := &lab{
		srv:   "lcsvc-" + sfx + "-srv",
		gst:   "lcsvc-" + sfx + "-gst",
		srvIf: "vif" + sfx[:6],
		mac:   net.HardwareAddr{0x00, 0x16, 0x3e, b[0], b[1], b[2]},
	}
	for _, ns := range []string{l.srv, l.gst} {
		run(t, "ip", "netns", "add", ns)
		t.Cleanup(func() {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Errorf("remove netns %s: %v %s", ns, err, out)
			}
		})
	}
	// Created inside srv, peer moved straight into gst: the root namespace
	// never holds either end.
	run(t, "ip", "-n", l.srv, "link", "add", l.srvIf, "type", "veth", "peer", "name", "eth0", "netns", l.gst)
	run(t, "ip", "-n", l.gst, "link", "set", "eth0", "address", l.mac.String())
	run(t, "ip", "-n", l.srv, "addr", "add", "198.51.100.1/24", "dev", l.srvIf)
	run(t, "ip", "-n", l.srv, "link", "set", l.srvIf, "up")
	run(t, "ip", "-n", l.srv, "link", "set", "lo", "up")
	var err error
	if l.srvNS, err = netns.GetFromName(l.srv); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.srvNS.Close() })
	if l.gstNS, err = netns.GetFromName(l.gst); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.gstNS.Close() })
	return l
}

// dialIn returns a DialFunc whose sockets are created in ns. The dial runs
// on its own locked thread; if switching back fails the thread stays
// locked and dies with the goroutine instead of serving others in ns.
func dialIn(ns netns.NsHandle) check.DialFunc {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		type res struct {
			c   net.Conn
			err error
		}
		ch := make(chan res, 1)
		go func() {
			runtime.LockOSThread()
			orig, err := netns.Get()
			if err != nil {
				ch <- res{nil, err}
				return
			}
			defer orig.Close()
			if err := netns.Set(ns); err != nil {
				ch <- res{nil, err}
				return
			}
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if netns.Set(orig) == nil {
				runtime.UnlockOSThread()
			}
			ch <- res{c, err}
		}()
		r := <-ch
		return r.c, r.err
	}
}

type guestProc struct {
	cmd     *exec.Cmd
	mu      sync.Mutex
	console strings.Builder
	lines   chan string
	stderr  *strings.Builder
	exited  chan error
}

func (g *guestProc) output() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.console.String()
}

// waitFor waits for a console line containing s.
func (g *guestProc) waitFor(t *testing.T, s string, d time.Duration) {
	t.Helper()
	deadline := time.After(d)
	for {
		if strings.Contains(g.output(), s) {
			return
		}
		select {
		case <-g.lines:
		case err := <-g.exited:
			t.Fatalf("guest exited (%v) before %q; console:\n%s\nstderr:\n%s", err, s, g.output(), g.stderr)
		case <-deadline:
			t.Fatalf("no %q after %v; console:\n%s\nstderr:\n%s", s, d, g.output(), g.stderr)
		}
	}
}

func startGuest(t *testing.T, l *lab, image string, env ...string) *guestProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// `ip netns exec` execs in place, so cmd.Process is the guest itself.
	cmd := exec.Command("ip", "netns", "exec", l.gst, exe, "-test.run=^TestGuestProcess$")
	cmd.Env = append(os.Environ(), append([]string{helperEnv + "=1", "LABCTL_GUEST_IMAGE=" + image, "LABCTL_GUEST_IFACE=eth0"}, env...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	g := &guestProc{cmd: cmd, lines: make(chan string, 100), stderr: &strings.Builder{}, exited: make(chan error, 1)}
	cmd.Stderr = &lockedWriter{mu: &g.mu, w: g.stderr}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			g.mu.Lock()
			g.console.WriteString(sc.Text() + "\n")
			g.mu.Unlock()
			select {
			case g.lines <- sc.Text():
			default:
			}
		}
	}()
	go func() {
		<-readDone
		g.exited <- cmd.Wait()
	}()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-g.exited:
			case <-time.After(5 * time.Second):
				_ = cmd.Process.Kill()
				<-g.exited
			}
		}
	})
	return g
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func startDnsmasq(t *testing.T, l *lab, pinned string) string {
	t.Helper()
	testenv.RequireTool(t, "dnsmasq")
	dir := t.TempDir()
	leases := filepath.Join(dir, "leases")
	cmd := exec.Command("ip", "netns", "exec", l.srv, "dnsmasq",
		"--no-daemon", "--conf-file=/dev/null", "--port=0",
		"--bind-interfaces", "--interface="+l.srvIf, "--except-interface=lo",
		"--dhcp-range=198.51.100.10,198.51.100.200,255.255.255.0,1h",
		"--dhcp-host="+l.mac.String()+","+pinned,
		"--dhcp-option=option:router,198.51.100.1",
		"--dhcp-authoritative",
		"--dhcp-leasefile="+leases, "--pid-file="+filepath.Join(dir, "pid"),
		"--user=root", "--log-dhcp", "--log-facility=-")
	var out strings.Builder
	cmd.Stdout = &out
	cmd.Stderr = &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("dnsmasq:\n%s", out.String())
		}
	})
	return leases
}

// The reference guest for real: DHCP from dnsmasq over a veth between two
// test namespaces, address and route set by netlink, then the whole
// contract over HTTP from the server's namespace.
func TestGuestDHCP(t *testing.T) {
	l := newLab(t)
	const pinned = "198.51.100.23"
	leases := startDnsmasq(t, l, pinned)
	start := time.Now()
	g := startGuest(t, l, "../testdata/store.img")
	g.waitFor(t, "HTTP: listening on :8088", 20*time.Second)
	ready := time.Since(start)
	t.Logf("console:\n%s", g.output())

	for _, want := range []string{
		"Guest booting...",
		"Users: image ../testdata/store.img: 4 users, sha256 ",
		"MAC: " + l.mac.String(),
		"Manager: connect",
		"DHCP: start discovery",
		"DHCP: offer received: " + pinned,
		"Routers(198.51.100.1)",
		"Lease time(3600)",
		"DHCP offer received and bound to " + pinned + " nm 255.255.255.0 gw [198.51.100.1]",
		"Manager: configuration done",
	} {
		if !strings.Contains(g.output(), want) {
			t.Errorf("console lacks %q", want)
		}
	}

	// The address and default route, seen from inside the guest namespace.
	nl, err := netlink.NewHandleAt(l.gstNS)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	link, err := nl.LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := nl.AddrList(link, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 1 || addrs[0].IPNet.String() != pinned+"/24" {
		t.Fatalf("guest eth0 addresses %v, want %s/24", addrs, pinned)
	}
	routes, err := nl.RouteList(link, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	hasDefault := false
	for _, r := range routes {
		if (r.Dst == nil || r.Dst.String() == "0.0.0.0/0") && r.Gw.String() == "198.51.100.1" {
			hasDefault = true
		}
	}
	if !hasDefault {
		t.Fatalf("no default route via 198.51.100.1 in %v", routes)
	}

	// dnsmasq recorded the lease for our MAC.
	deadline := time.Now().Add(5 * time.Second)
	for {
		b, _ := os.ReadFile(leases)
		if strings.Contains(string(b), l.mac.String()+" "+pinned) {
			if !strings.Contains(string(b), "testguest") {
				t.Errorf("lease lacks the host name: %s", b)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no lease for %s in %s: %q", l.mac, leases, b)
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The contract, from the server namespace: probe and every vector.
	vs, err := vectors.ParseFile("../testdata/vectors.tsv")
	if err != nil {
		t.Fatal(err)
	}
	cases := append(check.ProbeCases("john", "password"), check.VectorCases(vs)...)
	url := "http://" + pinned + ":8088"
	rep, err := check.Run(context.Background(), url, cases, check.Options{Guest: "gst", Dial: dialIn(l.srvNS), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Pass {
		t.Fatalf("%d/%d cases failed: %+v", rep.Failed, len(cases), rep.Failures())
	}

	// A short load to see memory under use.
	res, err := check.Load(context.Background(), check.LoadConfig{URL: url + "/?user=john&password=password", Requests: 500, Concurrency: 8, Dial: dialIn(l.srvNS)})
	if err != nil || res.Errors != 0 {
		t.Fatalf("load: %v %+v", err, res)
	}
	rss, err := ResidentKB(g.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("guest ready %v after start (incl. DHCP); %d cases passed; load p50 %.2f ms p99 %.2f ms; VmRSS %d KiB (test binary%s)",
		ready.Round(time.Millisecond), rep.Passed, res.P50MS, res.P99MS, rss, raceNote)

	// Clean shutdown on SIGTERM.
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-g.exited:
		if err != nil {
			t.Fatalf("guest exit: %v\n%s", err, g.output())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("guest did not stop within 5 s of SIGTERM")
	}
	if !strings.Contains(g.output(), "Guest halted") {
		t.Fatalf("no halt line:\n%s", g.output())
	}
}

func TestGuestStatic(t *testing.T) {
	l := newLab(t)
	g := startGuest(t, l, "../testdata/store.img", "LABCTL_GUEST_STATIC=198.51.100.42/24", "LABCTL_GUEST_GATEWAY=198.51.100.1")
	g.waitFor(t, "HTTP: listening on :8088", 10*time.Second)
	if !strings.Contains(g.output(), "IPv4: static 198.51.100.42 nm 255.255.255.0 gw [198.51.100.1]") {
		t.Fatalf("console:\n%s", g.output())
	}
	rep, err := check.Run(context.Background(), "http://198.51.100.42:8088", check.ProbeCases("john", "password"), check.Options{Dial: dialIn(l.srvNS)})
	if err != nil || !rep.Pass {
		t.Fatalf("%v %+v", err, rep.Failures())
	}
}

// A guest whose image is bad stops with an error naming it, before
// touching the network.
func TestGuestBadImage(t *testing.T) {
	l := newLab(t)
	bad := filepath.Join(t.TempDir(), "users.img")
	if err := os.WriteFile(bad, []byte("not a tar archive, not padded"), 0o600); err != nil {
		t.Fatal(err)
	}
	g := startGuest(t, l, bad)
	select {
	case err := <-g.exited:
		if err == nil || !strings.Contains(g.output(), "RUN ERROR") || !strings.Contains(g.output(), bad) {
			t.Fatalf("exit %v, console:\n%s", err, g.output())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("guest with a bad image kept running")
	}
	if strings.Contains(g.output(), "DHCP") {
		t.Fatalf("touched the network with a bad image:\n%s", g.output())
	}
}

// Renewal against the real server: lease seconds shortened to 100 µs, so
// the 1 h lease is renewed every 180 ms, by unicast-addressed REQUESTs
// that dnsmasq must ACK.
func TestGuestRenewsWithDnsmasq(t *testing.T) {
	l := newLab(t)
	startDnsmasq(t, l, "198.51.100.24")
	g := startGuest(t, l, "../testdata/store.img", "LABCTL_GUEST_LEASE_UNIT=100us")
	g.waitFor(t, "HTTP: listening on :8088", 20*time.Second)
	g.waitFor(t, "DHCP: lease renewed: 198.51.100.24 for 1h0m0s", 5*time.Second)
	time.Sleep(400 * time.Millisecond) // two more renewal periods
	out := g.output()
	if n := strings.Count(out, "DHCP: lease renewed"); n < 2 {
		t.Fatalf("%d renewals:\n%s", n, out)
	}
	if strings.Contains(out, "renew failed") || strings.Contains(out, "lease lost") {
		t.Fatalf("renewal trouble:\n%s", out)
	}
	rep, err := check.Run(context.Background(), "http://198.51.100.24:8088", check.ProbeCases("john", "password")[:1], check.Options{Dial: dialIn(l.srvNS)})
	if err != nil || !rep.Pass {
		t.Fatalf("after renewals: %v %+v", err, rep.Failures())
	}
}
