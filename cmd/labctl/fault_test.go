package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/internal/procs"
	"golang.org/x/sys/unix"
)

// The fault suite (issue 10): a lab whose dom0 already holds objects of
// the user's — a bridge br0 of their own (down, its own MAC), a secondary
// address and routes on the uplink (one using the secondary as source),
// an iptables chain and a DNS-only dnsmasq — is provisioned, deployed and
// torn down while labctl is killed (SIGKILL, the whole process group) at
// seeded random instants and while its state directory is full. After
// each fault a normal run must converge, and teardown must give back
// dom0 exactly as snapshotted: links (flags, MAC, master), addresses in
// order with their primary/secondary flag, routes, sysctls, rules and
// processes.
//
//	go test -run Fault ./cmd/labctl/ -v
//
// LABCTL_FAULT_SEED replays a run (the seed is printed; add
// -run 'FaultSuite/phases/deploy-kills' for one phase);
// LABCTL_FAULT_KILLS sets the kills per phase (default 50).
func TestFaultSuite(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LABCTL_FAULT_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("LABCTL_FAULT_SEED=%q: want an unsigned integer", s)
		}
	}
	kills := 50
	if s := os.Getenv("LABCTL_FAULT_KILLS"); s != "" {
		var err error
		if kills, err = strconv.Atoi(s); err != nil || kills < 1 {
			t.Fatalf("LABCTL_FAULT_KILLS=%q: want a positive integer", s)
		}
	}
	t.Logf("fault suite seed %d (replay: LABCTL_FAULT_SEED=%d), %d kills per phase", seed, seed, kills)
	// Kill the labctl binary itself, built without the race detector: the
	// suite is about a process dying, not about data races (the package's
	// other tests cover those), and a race-instrumented test binary as
	// labctl runs ~5x slower, which would put the suite far over CI's
	// budget under `go test -race ./...`.
	bin := labctlBinary(t)

	// Each phase has a lab of its own (own namespaces, state tmpfs and
	// objects of the user's), so the phases run side by side: most of a
	// phase is waiting on the kernel and on kill instants, and one after
	// another they were most of the suite's time (issue 11). A phase's
	// random stream is the seed plus its index, so one seed replays all.
	phases := []struct {
		name string
		run  func(f *faults)
	}{
		{"cases", (*faults).cases},
		{"provision-kills", func(f *faults) { f.provisionKills(kills) }},
		{"deploy-kills", func(f *faults) { f.deployKills(kills) }},
		{"teardown-kills", func(f *faults) { f.teardownKills(kills) }},
		{"full-disk", (*faults).fullDisk},
	}
	var (
		mu  sync.Mutex
		sum faults
	)
	t.Run("phases", func(t *testing.T) {
		for i, p := range phases {
			t.Run(p.name, func(t *testing.T) {
				t.Parallel()
				f := newFaults(t, bin, seed+uint64(i))
				p.run(f)
				mu.Lock()
				defer mu.Unlock()
				sum.kills += f.kills
				sum.faults += f.faults
				sum.compares += f.compares * f.objects
				sum.lost += f.lost
				if f.flood != "" {
					sum.flood = f.flood
				}
			})
		}
	})
	if t.Failed() {
		return
	}
	// The one line the issue asks for.
	fmt.Printf("fault suite: seed %d, kills survived %d, faults injected %d, objects of the user's compared %d, lost = %d; flood: %s\n",
		seed, sum.kills, sum.kills+sum.faults, sum.compares, sum.lost, sum.flood)
}

// newFaults starts a lab for one phase: the user's objects in dom0, its
// snapshot, and one clean provision+deploy+teardown whose timings bound
// the phase's random kill instants.
func newFaults(t *testing.T, bin string, seed uint64) *faults {
	l := newLab(t)
	l.Exe = bin
	// The state directory lives on a small tmpfs so the disk can be
	// filled; lazily detached, so a dnsmasq still holding a file open
	// at cleanup does not keep it mounted.
	root := filepath.Join(t.TempDir(), "state")
	if err := os.Mkdir(root, 0o711); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("labctl-fault", root, "tmpfs", 0, "size=64m,mode=0711"); err != nil {
		t.Fatalf("mounting a tmpfs for the state directory: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
	l.StateRoot = root

	spec := fastSpec(t, "")
	f := &faults{t: t, l: l, rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), spec: spec, base: spec}
	f.userObjects()
	f.before = f.snapshot()
	f.objects = strings.Count(f.before, "\n")

	// One clean cycle first: the user's objects survive it, and its
	// timings bound the random kill instants.
	t0 := time.Now()
	f.run("provision")
	f.tProv = time.Since(t0)
	t0 = time.Now()
	f.run("deploy")
	f.tDep = time.Since(t0)
	t0 = time.Now()
	f.run("teardown")
	f.tDown = time.Since(t0)
	f.compare(f.before, "clean provision+deploy+teardown")
	t.Logf("clean cycle: provision %v, deploy %v, teardown %v", f.tProv, f.tDep, f.tDown)
	return f
}

// cases: pins written but not loaded; refusals by preflight, before
// anything changes (a rival DHCP server, a non-bridge link of the
// bridge's name, the same lab from another state directory); commands
// that change nothing write nothing and wait for a writer instead of
// failing "busy"; then a flood against the guest.
func (f *faults) cases() {
	f.pinsWrittenNotLoaded()
	f.run("teardown")
	f.compare(f.before, "after the pins case")
	f.preflightRefusals(f.before)
	f.run("provision")
	f.run("deploy")
	f.readOnly()
	f.floodGuest()
	f.spec = f.base
	f.run("teardown")
	f.compare(f.before, "after the read-only and flood cases")
}

// provisionKills: provision killed at random instants; every other kill
// is followed by a converging provision, the rest by teardown straight
// away.
func (f *faults) provisionKills(kills int) {
	for i := range kills {
		f.killAt("provision", f.jitter(f.tProv))
		if i%2 == 0 {
			f.run("provision")
		}
		f.run("teardown")
		f.compare(f.before, fmt.Sprintf("provision kill %d", i+1))
	}
}

// deployKills: deploy killed at random instants, alternating the replica
// count so each deploy has guests to start or stop; a normal deploy
// converges.
func (f *faults) deployKills(kills int) {
	f.run("provision")
	for i := range kills {
		f.spec = fastSpec(f.t, fmt.Sprintf("guests:\n  replicas: %d\n", 1+i%2))
		f.killAt("deploy", f.jitter(f.tDep))
		f.run("deploy")
		f.run("status")
	}
	f.spec = f.base
	f.run("teardown")
	f.compare(f.before, "after the deploy kills")
}

// teardownKills: teardown killed at random instants; a second teardown
// finishes.
func (f *faults) teardownKills(kills int) {
	for i := range kills {
		f.run("provision")
		if i%5 == 0 {
			f.run("deploy")
		}
		f.killAt("teardown", f.jitter(f.tDown))
		f.run("teardown")
		f.compare(f.before, fmt.Sprintf("teardown kill %d", i+1))
	}
}

// fullDisk: provision and deploy with the state directory's tmpfs filled
// so that only k pages are free, for every k from none to what a clean
// provision+deploy uses. The run may fail (with a message), never hang;
// once space is back a run converges.
func (f *faults) fullDisk() {
	t := f.t
	f.run("provision")
	f.run("deploy")
	used := f.usedPages()
	t.Logf("a provisioned, deployed lab uses %d pages of the state directory", used)
	f.run("teardown")
	f.compare(f.before, "before the full-disk runs")
	for k := range used + 2 {
		f.fill(k)
		for _, verb := range []string{"provision", "deploy"} {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			cmd := f.command(ctx, verb)
			out, err := cmd.CombinedOutput()
			hung := ctx.Err() != nil
			cancel()
			if hung {
				t.Fatalf("%s with %d pages free hung: %s", verb, k, out)
			}
			if err != nil && !strings.Contains(strings.ToLower(string(out)), "no space left") {
				t.Errorf("%s with %d pages free failed without naming the full disk: %s", verb, k, lastLine(out))
			}
			f.faults++
		}
		f.unfill()
		f.run("provision")
		f.run("teardown")
		f.compare(f.before, fmt.Sprintf("full disk with %d pages free", k))
	}
}

type faults struct {
	t        *testing.T
	l        *labtest.Lab
	rng      *rand.Rand
	spec     string // the spec runs use now
	base     string // the phase's one-guest spec
	before   string // dom0's snapshot before labctl ran
	tProv    time.Duration
	tDep     time.Duration
	tDown    time.Duration // a clean run's durations
	kills    int           // kills -9 after which the lab converged
	faults   int           // other faults injected (full disk)
	objects  int           // lines of the user's snapshot
	compares int
	lost     int // comparisons that differed
	filler   string
	flood    string // the flood's figures, for the summary line
}

func (f *faults) command(ctx context.Context, verb string, extra ...string) *exec.Cmd {
	args := []string{verb, "--target", "sim"}
	if verb == "provision" || verb == "deploy" || verb == "status" || verb == "doctor" {
		args = append(args, "-f", f.spec)
	}
	cmd := f.l.Command(ctx, nil, append(args, extra...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// run runs a verb to completion; it must succeed.
func (f *faults) run(verb string) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out, err := f.command(ctx, verb).CombinedOutput()
	if err != nil {
		f.t.Fatalf("%s after %d kills, %d faults: %v\n%s", verb, f.kills, f.faults, err, out)
	}
}

// killAt starts verb and kills its process group after d.
func (f *faults) killAt(verb string, d time.Duration) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := f.command(ctx, verb)
	if err := cmd.Start(); err != nil {
		f.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done: // finished before the kill: still a run to converge from
	case <-time.After(d):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		// Reaping labctl does not mean its group is gone: a child caught
		// between fork and exec still shares labctl's lock until the
		// kernel finishes killing it (CI saw the next run say "busy").
		// A user's next command would meet the same honest "busy"; the
		// suite waits for the group to be gone, which is what it tests.
		labtest.WaitGroupGone(f.t, cmd.Process.Pid)
	}
	f.kills++
}

// jitter is a random instant within 1.2x a clean run's duration.
func (f *faults) jitter(typical time.Duration) time.Duration {
	return time.Duration(f.rng.Int64N(int64(typical)*6/5 + 1))
}

// userObjects puts the user's own objects into dom0 before labctl runs.
func (f *faults) userObjects() {
	t, ns := f.t, f.l.Dom0NS()
	for _, argv := range [][]string{
		{"ip", "link", "add", "br0", "address", "02:aa:bb:cc:dd:01", "type", "bridge"},
		{"ip", "addr", "add", "192.168.77.50/24", "dev", "eth1"},
		{"ip", "route", "add", "198.51.100.0/24", "via", "192.168.77.1", "dev", "eth1"},
		{"ip", "route", "add", "198.51.101.0/24", "via", "192.168.77.1", "dev", "eth1", "src", "192.168.77.50"},
		{"ip", "route", "add", "198.51.102.0/24", "via", "192.168.77.1", "dev", "eth1", "table", "100"},
		{"ip", "link", "add", "user0", "type", "veth", "peer", "name", "user0p"},
		{"ip", "link", "set", "user0p", "up"},
		{"ip", "addr", "add", "10.99.0.1/24", "dev", "user0"},
		{"ip", "link", "set", "user0", "up"},
		{"iptables", "-N", "USER-CHAIN"},
		{"iptables", "-A", "USER-CHAIN", "-s", "10.99.0.0/24", "-j", "ACCEPT"},
		{"iptables", "-A", "FORWARD", "-i", "user0", "-j", "USER-CHAIN"},
	} {
		labtest.Exec(t, ns, argv...)
	}
	// A DNS-only dnsmasq of the user's on user0 (no DHCP: a rival DHCP
	// server is a preflight error, not an object to keep).
	dir := t.TempDir()
	pid := filepath.Join(dir, "user-dnsmasq.pid")
	labtest.Exec(t, ns, "dnsmasq", "--conf-file=/dev/null", "--port=5353", "--listen-address=10.99.0.1",
		"--bind-interfaces", "--pid-file="+pid, "--user=root")
	t.Cleanup(func() {
		if p := procs.ReadPidfile(pid); p > 0 {
			syscall.Kill(p, syscall.SIGKILL)
		}
	})
}

// snapshot is labtest's dom0 snapshot plus what it sorts away: each
// link's addresses in the kernel's order with their secondary flag.
func (f *faults) snapshot() string {
	t, ns := f.t, f.l.Dom0NS()
	var addrs []struct {
		Name  string `json:"ifname"`
		Addrs []struct {
			Local     string `json:"local"`
			Prefix    int    `json:"prefixlen"`
			Secondary bool   `json:"secondary"`
		} `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(labtest.Exec(t, ns, "ip", "-j", "-4", "addr", "show")), &addrs); err != nil {
		t.Fatal(err)
	}
	sort.Slice(addrs, func(i, j int) bool { return addrs[i].Name < addrs[j].Name })
	var b strings.Builder
	b.WriteString(labtest.Snapshot(t, ns) + "\n")
	for _, a := range addrs {
		for i, x := range a.Addrs {
			fmt.Fprintf(&b, "addr-order %s %d %s/%d secondary=%v\n", a.Name, i, x.Local, x.Prefix, x.Secondary)
		}
	}
	return b.String()
}

func (f *faults) compare(before, when string) {
	f.t.Helper()
	f.compares++
	if after := f.snapshot(); after != before {
		f.lost++
		f.t.Fatalf("%s (seed replay in the log): dom0 differs from the snapshot:\n%s", when, lineDiff(before, after))
	}
}

func lineDiff(a, b string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	ma, mb := in(a), in(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if !mb[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if !ma[l] {
			out = append(out, "+ "+l)
		}
	}
	if len(out) == 0 {
		return "(same lines, another order)\n--- before\n" + a + "\n--- after\n" + b
	}
	return strings.Join(out, "\n")
}

// pinsWrittenNotLoaded is item 7: a deploy killed between writing the
// pins and dnsmasq's reload. Two guests are deployed (their pins
// recorded), one is taken away (dnsmasq reloads one pin), then the
// two-pin file is written by hand with no reload: the next two-guest
// deploy must reload, or guest 2 never gets its pinned lease.
func (f *faults) pinsWrittenNotLoaded() {
	f.t.Helper()
	two := fastSpec(f.t, "guests:\n  replicas: 2\n")
	f.spec = two
	f.run("provision")
	f.run("deploy")
	hosts := filepath.Join(f.l.StateDir(), "dnsmasq", "dhcp-hosts")
	pins, err := os.ReadFile(hosts)
	if err != nil || strings.Count(string(pins), "\n") != 2 {
		f.t.Fatalf("pins after a two-guest deploy: %q, %v", pins, err)
	}
	f.spec = fastSpec(f.t, "guests:\n  replicas: 1\n")
	f.run("deploy")
	if err := os.WriteFile(hosts, pins, 0o644); err != nil {
		f.t.Fatal(err)
	}
	f.spec = two
	f.run("deploy")
	f.faults++
	f.spec = fastSpec(f.t, "")
}

// usedPages is how many pages the state directory's tmpfs holds.
func (f *faults) usedPages() int {
	var st unix.Statfs_t
	if err := unix.Statfs(f.l.StateRoot, &st); err != nil {
		f.t.Fatal(err)
	}
	return int((st.Blocks - st.Bfree) * uint64(st.Bsize) / 4096)
}

// fill leaves k pages free on the state directory's tmpfs.
func (f *faults) fill(k int) {
	f.t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(f.l.StateRoot, &st); err != nil {
		f.t.Fatal(err)
	}
	free := int64(st.Bavail)*st.Bsize - int64(k)*4096
	f.filler = filepath.Join(f.l.StateRoot, "filler")
	fh, err := os.Create(f.filler)
	if err != nil {
		f.t.Fatal(err)
	}
	defer fh.Close()
	w := bufio.NewWriterSize(fh, 1<<20)
	buf := make([]byte, 1<<20)
	for free > 0 {
		n := min(free, int64(len(buf)))
		if _, err := w.Write(buf[:n]); err != nil {
			break // full already
		}
		free -= n
	}
	w.Flush()
}

func (f *faults) unfill() {
	if f.filler != "" {
		os.Remove(f.filler)
	}
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}

// labctlBinary is this package's labctl built without -race, with
// labctl-guest beside it (the process runtime starts the guest it finds
// next to labctl), built once per test run into builtDir.
func labctlBinary(t *testing.T) string {
	t.Helper()
	bin, err := buildLabctl()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

var (
	builtDir    string // removed by TestMain
	buildLabctl = sync.OnceValues(func() (string, error) {
		dir, err := os.MkdirTemp("", "labctl-bin")
		if err != nil {
			return "", err
		}
		builtDir = dir
		bin := filepath.Join(dir, "labctl")
		if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
			return "", fmt.Errorf("building labctl without -race: %v\n%s", err, out)
		}
		if out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "labctl-guest"), "../labctl-guest").CombinedOutput(); err != nil {
			return "", fmt.Errorf("building labctl-guest: %v\n%s", err, out)
		}
		return bin, nil
	})
)
