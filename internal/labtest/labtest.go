// Package labtest builds simulated labs for tests: a uniquely named lab
// whose namespaces, processes and state are removed in t.Cleanup (also on
// failure), with a check that nothing leaked.
package labtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/vmctl"
	"github.com/vishvananda/netns"
)

// Lab is one simulated lab under test, driven through the labctl binary.
type Lab struct {
	T         testing.TB
	Name      string
	StateRoot string
	Exe       string   // the labctl binary (or a test binary acting as it)
	Env       []string // extra environment for every labctl run
}

// New creates a lab named "<prefix><random>" and registers its cleanup.
// exe runs labctl; env is added to its environment.
func New(t testing.TB, prefix, exe string, env ...string) *Lab {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "ip", "dnsmasq", "iptables", "iptables-save", "iptables-restore")
	b := make([]byte, 3)
	rand.Read(b)
	// No evidence bundles from expected failures (CI=true would write them
	// into the test's working directory); a test asking for one overrides.
	env = append([]string{"LABCTL_BUNDLE_ON_FAILURE=off"}, env...)
	l := &Lab{T: t, Name: prefix + hex.EncodeToString(b), StateRoot: t.TempDir(), Exe: exe, Env: env}
	// dnsmasq drops root for nobody and must reach the state directory;
	// t.TempDir makes 0700 directories.
	for dir := l.StateRoot; dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
		if err := os.Chmod(dir, 0o711); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// Remove everything even if the test failed half-way, then check.
		if err := vmctl.SimDown(ctx, l.Name, discardLogger()); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		l.CheckNoLeaks()
	})
	return l
}

// Run runs labctl with args (adding --lab and --state-dir) and returns
// stdout, stderr and the exit code.
func (l *Lab) Run(args ...string) (stdout, stderr string, code int) {
	l.T.Helper()
	return l.RunEnv(nil, args...)
}

// RunEnv is Run with extra environment.
func (l *Lab) RunEnv(env []string, args ...string) (stdout, stderr string, code int) {
	l.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := l.Command(ctx, env, args...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	code = 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			l.T.Fatalf("labctl %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code
}

// Command returns the labctl command without starting it.
func (l *Lab) Command(ctx context.Context, env []string, args ...string) *exec.Cmd {
	full := append(slices.Clone(args), "--lab", l.Name, "--state-dir", l.StateRoot)
	cmd := exec.CommandContext(ctx, l.Exe, full...)
	cmd.Env = append(append(os.Environ(), l.Env...), env...)
	return cmd
}

// MustRun runs labctl and fails the test on a non-zero exit.
func (l *Lab) MustRun(args ...string) string {
	l.T.Helper()
	out, errOut, code := l.Run(args...)
	if code != 0 {
		l.T.Fatalf("labctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// Netns names.
func (l *Lab) HostNS() string { h, _, _ := vmctl.SimNames(l.Name); return h }
func (l *Lab) Dom0NS() string { _, d, _ := vmctl.SimNames(l.Name); return d }
func (l *Lab) WANNS() string  { _, _, w := vmctl.SimNames(l.Name); return w }

// StateDir is the lab's state directory.
func (l *Lab) StateDir() string { return filepath.Join(l.StateRoot, l.Name) }

// Exec runs a command inside a namespace and returns its combined output.
func Exec(t testing.TB, ns string, argv ...string) string {
	t.Helper()
	out, err := ExecErr(ns, argv...)
	if err != nil {
		t.Fatalf("in %s: %s: %v\n%s", ns, strings.Join(argv, " "), err, out)
	}
	return out
}

// ExecErr runs a command inside a namespace.
func ExecErr(ns string, argv ...string) (string, error) {
	var b bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := vmctl.Netns{Name: ns}.Run(ctx, argv, nil, &b, &b)
	return b.String(), err
}

// InNetns runs f on an OS thread inside the namespace. Sockets f creates
// stay in that namespace and may be used from any goroutine afterwards.
func InNetns(t testing.TB, ns string, f func()) {
	t.Helper()
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("netns %s: %v", ns, err)
	}
	defer target.Close()
	orig, err := netns.Get()
	if err != nil {
		t.Fatalf("current netns: %v", err)
	}
	defer orig.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			t.Errorf("entering %s: %v", ns, err)
			return
		}
		f()
		// Back to the original namespace before the thread is shared
		// again; if that fails the thread stays locked and is discarded
		// (or, for the main thread, parked) when the goroutine ends.
		if err := netns.Set(orig); err != nil {
			t.Errorf("leaving %s: %v", ns, err)
			return
		}
		runtime.UnlockOSThread()
	}()
	<-done
}

// Listen opens a TCP listener inside ns.
func Listen(t testing.TB, ns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	InNetns(t, ns, func() { ln, err = net.Listen("tcp4", addr) })
	if err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// Dial connects from inside ns.
func Dial(t testing.TB, ns, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	var err error
	InNetns(t, ns, func() { c, err = net.DialTimeout("tcp4", addr, 5*time.Second) })
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Snapshot is dom0's state as labctl may change it, normalized so that
// two snapshots compare equal exactly when nothing labctl controls differs
// (operational flags like carrier, which follow the peer, are left out).
func Snapshot(t testing.TB, ns string) string {
	t.Helper()
	var b strings.Builder
	// Links: name, kind, admin flags, master, MAC.
	var links []struct {
		Name    string   `json:"ifname"`
		Flags   []string `json:"flags"`
		Master  string   `json:"master"`
		Address string   `json:"address"`
		Info    struct {
			Kind string `json:"info_kind"`
		} `json:"linkinfo"`
	}
	mustJSON(t, Exec(t, ns, "ip", "-j", "-d", "link", "show"), &links)
	sort.Slice(links, func(i, j int) bool { return links[i].Name < links[j].Name })
	for _, l := range links {
		var flags []string
		for _, f := range l.Flags {
			if f != "LOWER_UP" && f != "NO-CARRIER" && f != "M-DOWN" {
				flags = append(flags, f)
			}
		}
		fmt.Fprintf(&b, "link %s kind=%s flags=%s master=%s mac=%s\n", l.Name, l.Info.Kind, strings.Join(flags, ","), l.Master, l.Address)
	}
	var addrs []struct {
		Name  string `json:"ifname"`
		Addrs []struct {
			Local  string `json:"local"`
			Prefix int    `json:"prefixlen"`
		} `json:"addr_info"`
	}
	mustJSON(t, Exec(t, ns, "ip", "-j", "-4", "addr", "show"), &addrs)
	var al []string
	for _, a := range addrs {
		for _, x := range a.Addrs {
			al = append(al, fmt.Sprintf("addr %s %s/%d", a.Name, x.Local, x.Prefix))
		}
	}
	sort.Strings(al)
	b.WriteString(strings.Join(al, "\n") + "\n")
	routes := strings.Split(strings.TrimSpace(Exec(t, ns, "ip", "-4", "route", "show", "table", "all")), "\n")
	sort.Strings(routes)
	b.WriteString("routes:\n" + strings.Join(routes, "\n") + "\n")
	for _, k := range []string{"net/ipv4/ip_forward", "net/ipv4/conf/all/forwarding", "net/ipv4/conf/default/forwarding"} {
		b.WriteString("sysctl " + k + "=" + strings.TrimSpace(Exec(t, ns, "cat", "/proc/sys/"+k)) + "\n")
	}
	for _, line := range strings.Split(Exec(t, ns, "iptables-save"), "\n") {
		if line != "" && !strings.HasPrefix(line, "#") {
			b.WriteString("ipt " + line + "\n")
		}
	}
	if _, err := exec.LookPath("nft"); err == nil {
		for _, line := range strings.Split(Exec(t, ns, "nft", "list", "tables"), "\n") {
			if line != "" {
				b.WriteString("nft " + line + "\n")
			}
		}
	}
	pids, err := vmctl.NetnsPids(ns)
	if err != nil {
		t.Fatal(err)
	}
	var procs []string
	for _, p := range pids {
		cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
		procs = append(procs, "proc "+strings.ReplaceAll(strings.TrimRight(string(cmd), "\x00"), "\x00", " "))
	}
	sort.Strings(procs)
	b.WriteString(strings.Join(procs, "\n"))
	return b.String()
}

func mustJSON(t testing.TB, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatalf("parsing %q: %v", s, err)
	}
}

// CheckNoLeaks fails the test if any namespace, process or state of the
// lab is left.
func (l *Lab) CheckNoLeaks() {
	l.T.Helper()
	names, err := vmctl.SimNamespaces(l.Name)
	if err != nil {
		l.T.Errorf("leak check: %v", err)
	}
	if len(names) > 0 {
		l.T.Errorf("leaked namespaces: %v", names)
	}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cmd, []byte(l.StateDir()+"/")) {
			l.T.Errorf("leaked process %s: %s", e.Name(), strings.ReplaceAll(string(cmd), "\x00", " "))
		}
	}
}
