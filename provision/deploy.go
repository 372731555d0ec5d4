package provision

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/netsetup"
	"github.com/labctl/labctl/service/check"
	"github.com/labctl/labctl/statedir"
	"github.com/labctl/labctl/vmctl"
)

// KindGuest records a guest labctl started: Name, Path (its state
// directory, holding guest.json). Undo stops it and removes its pin.
const KindGuest = "guest"

// GuestRecord is what labctl knows about one deployed guest, kept in
// <state>/guests/<name>/guest.json.
type GuestRecord struct {
	Name     string     `json:"name"`
	Index    int        `json:"index"`
	Runtime  string     `json:"runtime"`
	MAC      MAC        `json:"mac"` // typed, written as text: guest.json is unchanged
	IP       netip.Addr `json:"ip"`
	Port     int        `json:"port"`
	Bridge   string     `json:"bridge"`
	Image    string     `json:"image"`
	ImageSHA string     `json:"image_sha256"`
	Kernel   string     `json:"kernel"`
	KernelID string     `json:"kernel_id"`
	StateDir string     `json:"state_dir"`
}

// URL is the guest's service address.
func (g GuestRecord) URL() string { return fmt.Sprintf("http://%s:%d/", g.IP, g.Port) }

// DeployInput is what deploy needs besides the spec: the users image
// (already on dom0) and the guest kernel (for the process runtime, the
// labctl binary itself).
type DeployInput struct {
	Image    string `json:"image"`
	ImageSHA string `json:"image_sha256"`
	Kernel   string `json:"kernel,omitempty"`
}

func (d guestSteps) guestsDir() string { return statedir.Of(d.StateDir).Guests() }

// withKernel sets the kernel the spec's runtime boots: the unikernel for
// xen (built in dom0, or xen.kernel); for process, what the host sent.
func (d guestSteps) withKernel(in DeployInput) DeployInput {
	if a := d.adapter(); a.Kernel != nil {
		if k, err := a.Kernel(d.Dom0); err == nil {
			in.Kernel = k
		}
	}
	return in
}

// desiredGuests lists the spec's guests with their identities.
func (d guestSteps) desiredGuests(in DeployInput) []GuestRecord {
	s := d.Spec
	start := s.Network.DHCP.Start.Addr()
	kid := fileID(in.Kernel)
	var out []GuestRecord
	ip := start
	for i := 1; i <= s.Guests.Replicas; i++ {
		name := fmt.Sprintf("%s-%d", s.Guests.Name, i)
		out = append(out, GuestRecord{
			Name: name, Index: i, Runtime: s.Guests.Runtime,
			MAC: MAC(vmctl.GuestMAC(s.Lab, name)), IP: ip, Port: s.Guests.Port,
			Bridge: s.Network.Bridge, Image: in.Image, ImageSHA: in.ImageSHA,
			Kernel: in.Kernel, KernelID: kid, StateDir: filepath.Join(d.guestsDir(), name),
		})
		ip = ip.Next()
	}
	return out
}

// fileID identifies a kernel binary cheaply: a changed binary (rebuilt
// labctl, new unikernel) restarts its guests.
func fileID(path string) string {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return "missing"
	}
	return fmt.Sprintf("%d:%d:%d.%d", st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec)
}

// guestSpec is what the guest's runtime needs.
func (d guestSteps) guestSpec(g GuestRecord) vmctl.GuestSpec {
	return vmctl.GuestSpec{
		Lab: d.Spec.Lab, Name: g.Name, Index: g.Index, MAC: g.MAC.HardwareAddr(), IP: g.IP, Bridge: g.Bridge,
		Kernel: g.Kernel, Image: g.Image, StateDir: g.StateDir, Memory: d.Spec.Guests.Memory,
		Extra: d.Spec.Xen.Extra, Port: g.Port,
	}
}

// runtime is the runtime a guest was (or will be) deployed with.
func (d guestSteps) runtime(g GuestRecord) vmctl.Runtime {
	if rt, ok := d.Runtimes[g.Runtime]; ok {
		return rt
	}
	return unknownRuntime(g.Runtime)
}

// unknownRuntime fails every call, naming the runtime: a record written
// by a newer labctl, say.
type unknownRuntime string

func (u unknownRuntime) Name() string { return string(u) }
func (u unknownRuntime) err() error {
	return fmt.Errorf("guest runtime %q: expected process or xen", string(u))
}
func (u unknownRuntime) Start(context.Context, vmctl.GuestSpec) error { return u.err() }
func (u unknownRuntime) Stop(context.Context, vmctl.GuestSpec) error  { return u.err() }
func (u unknownRuntime) State(context.Context, vmctl.GuestSpec) (vmctl.GuestState, error) {
	return vmctl.GuestState{}, u.err()
}

// ReadGuests lists the deployed guests' records, by index.
func ReadGuests(stateDir string) ([]GuestRecord, error) {
	layout := statedir.Of(stateDir)
	ents, err := os.ReadDir(layout.Guests())
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []GuestRecord
	for _, e := range ents {
		b, err := os.ReadFile(layout.GuestFile(e.Name(), statedir.GuestRecord))
		if err != nil {
			continue // being created or removed
		}
		var g GuestRecord
		if err := json.Unmarshal(b, &g); err != nil {
			return nil, fmt.Errorf("guest record %s: %w", e.Name(), err)
		}
		out = append(out, g)
	}
	slices.SortFunc(out, func(a, b GuestRecord) int { return a.Index - b.Index })
	return out, nil
}

func writeRecord(g GuestRecord) error {
	if err := os.MkdirAll(g.StateDir, 0o700); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(g, "", "  ")
	return procs.WriteFileAtomic(filepath.Join(g.StateDir, statedir.GuestRecord), append(b, '\n'), 0o600)
}

// renderPins is dnsmasq's dhcp-hostsfile: one "MAC,IP,name" per guest.
func renderPins(gs []GuestRecord) []byte {
	var b strings.Builder
	for _, g := range gs {
		fmt.Fprintf(&b, "%s,%s,%s\n", g.MAC, g.IP, g.Name)
	}
	return []byte(b.String())
}

// DeploySteps are provision's steps, the runtime's own (for xen the
// toolchain check and the unikernel build), the pins, then each guest
// (concurrently), then removal of guests no longer in the spec.
func (d guestSteps) DeploySteps(in DeployInput, plan bool) []Step {
	steps := d.Steps()
	guestAfter := []string{"pins"}
	if a := d.adapter(); a.Steps != nil {
		for _, s := range a.Steps(d.Dom0, plan) {
			steps = append(steps, s)
			guestAfter = append(guestAfter, s.Name)
		}
	}
	want := d.desiredGuests(d.withKernel(in))
	// One deadline for every guest of this deploy: retries back off
	// inside it rather than each guest getting a fresh budget. It starts
	// with the first guest step, not here: xen's unikernel build before
	// it can take minutes.
	deadline := sync.OnceValue(func() time.Time { return time.Now().Add(guestBudget(len(want))) })
	steps = append(steps, Step{
		Name: "pins", After: []string{"dnsmasq"},
		Observe: func(ctx context.Context) ([]Item, error) { return d.observePins(want) },
		Apply:   func(ctx context.Context, _ []Item) error { return d.applyPins(ctx, want) },
	})
	for _, g := range want {
		// What applyGuest proved (lease and health, after its retries):
		// the verify reuses it instead of one more single-shot probe,
		// which under load failed deploys of guests already healthy.
		var proven *guestProof
		steps = append(steps, Step{
			Name: GuestStep(g.Name), After: guestAfter,
			Observe: func(ctx context.Context) ([]Item, error) { return d.observeGuest(ctx, g, plan, nil) },
			Apply: func(ctx context.Context, _ []Item) error {
				p, err := d.applyGuest(ctx, g, deadline())
				proven = p
				return err
			},
			Verify: func(ctx context.Context) ([]Item, error) { return d.observeGuest(ctx, g, plan, proven) },
		})
	}
	steps = append(steps, Step{
		Name: "prune", After: []string{"pins"},
		Observe: func(ctx context.Context) ([]Item, error) { return d.observePrune(want) },
		Apply:   func(ctx context.Context, _ []Item) error { return d.applyPrune(ctx, want) },
	})
	return steps
}

func (d guestSteps) observePins(want []GuestRecord) ([]Item, error) {
	c := d.Dnsmasq()
	have, _ := os.ReadFile(c.HostsPath())
	obs := "current"
	switch {
	case string(have) != string(renderPins(want)):
		obs = fmt.Sprintf("%d pins, not the spec's %d", strings.Count(string(have), "\n"), len(want))
	case !d.pinsLoaded(c, have):
		// The file is right but the running dnsmasq may not have read it:
		// a run killed between the write and the SIGHUP leaves exactly
		// this, and the file alone would say "current" for ever.
		obs = "written, not known to be loaded by the running dnsmasq"
	}
	return []Item{ok("dhcp-host pins", "current", obs)}, nil
}

// pinsLoadedPath records which dnsmasq (pid) has read which hosts file
// (sha256), written only after dnsmasq's log confirmed the re-read.
func pinsLoadedPath(c netsetup.DnsmasqConfig) string {
	return filepath.Join(c.Dir, "dhcp-hosts.loaded")
}

func pinsMark(pid int, content []byte) string {
	return fmt.Sprintf("%d %x\n", pid, sha256.Sum256(content))
}

// pinsLoaded reports whether the running dnsmasq is known to have read
// content. Unsure (no mark, another pid, no dnsmasq) is false: a SIGHUP
// costs a few milliseconds, a guest without its pin costs a deploy.
func (d guestSteps) pinsLoaded(c netsetup.DnsmasqConfig, content []byte) bool {
	pid := netsetup.ObserveDnsmasq(c).Pid
	if pid == 0 {
		return false
	}
	mark, err := os.ReadFile(pinsLoadedPath(c))
	return err == nil && string(mark) == pinsMark(pid, content)
}

// applyPins rewrites the hosts file and makes dnsmasq re-read it (SIGHUP):
// no restart, so it keeps its pid and every lease.
func (d guestSteps) applyPins(ctx context.Context, want []GuestRecord) error {
	return d.writePins(ctx, d.Dnsmasq(), renderPins(want))
}

// writePins writes the hosts file, reloads dnsmasq and, once dnsmasq said
// it re-read the file, marks it loaded by that pid. The mark is removed
// before the write, so a kill at any point leaves no mark that lies.
func (d guestSteps) writePins(ctx context.Context, c netsetup.DnsmasqConfig, content []byte) error {
	if err := os.Remove(pinsLoadedPath(c)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing %s: %w", pinsLoadedPath(c), err)
	}
	if err := procs.WriteFileAtomic(c.HostsPath(), content, 0o644); err != nil {
		return err
	}
	if err := netsetup.ReloadDnsmasq(ctx, c); err != nil {
		return err
	}
	pid := netsetup.ObserveDnsmasq(c).Pid
	if pid == 0 {
		return fmt.Errorf("dnsmasq for %s stopped after re-reading %s", c.Bridge, c.HostsPath())
	}
	return procs.WriteFileAtomic(pinsLoadedPath(c), []byte(pinsMark(pid, content)), 0o644)
}

// leaseOf finds the guest's unexpired lease by MAC, for a verdict
// (status, doctor): only a settled lease file counts (readLeases), and a
// lease not found is looked for again a few times, milliseconds apart,
// before it counts as absent.
func (d guestSteps) leaseOf(g GuestRecord) (netsetup.Lease, bool) {
	mac := g.MAC.HardwareAddr()
	for try := range 4 {
		if try > 0 {
			time.Sleep(2 * time.Millisecond)
		}
		ls, err := readLeases(d.Dnsmasq().LeasePath(), true)
		if err != nil {
			continue // a torn last line, or a file being replaced
		}
		if l, found := netsetup.LeaseFor(ls, mac, time.Now()); found {
			return l, true
		}
	}
	return netsetup.Lease{}, false
}

// leaseNow is one look for the guest's lease where "not found" is not a
// verdict — a poll that looks again (waitHealthy), a release that is
// optional — so it does not wait for the file to settle: while guests
// boot or go, dnsmasq rewrites it every few milliseconds.
func (d guestSteps) leaseNow(g GuestRecord) (netsetup.Lease, bool) {
	mac := g.MAC.HardwareAddr()
	ls, err := readLeases(d.Dnsmasq().LeasePath(), false)
	if err != nil {
		return netsetup.Lease{}, false
	}
	return netsetup.LeaseFor(ls, mac, time.Now())
}

// probe asks the guest for the contract's cheapest answer — no
// credentials: 401 "No user given" — which proves the service runs
// without costing a PBKDF2 computation.
// connect bounds the TCP connect; while waiting for a booting guest a
// short one is retried rather than waited on: a SYN sent while the guest
// still configures its address is lost, and TCP resends it only after a
// second.
func probe(ctx context.Context, g GuestRecord, connect, timeout time.Duration) error {
	dialer := net.Dialer{Timeout: connect}
	return check.Health(ctx, dialer.DialContext, net.JoinHostPort(g.IP.String(), strconv.Itoa(g.Port)), timeout)
}

// readRecord reads the guest record deploy wrote last, if any.
func readRecord(dir string) (GuestRecord, bool) {
	var g GuestRecord
	b, err := os.ReadFile(filepath.Join(dir, statedir.GuestRecord))
	if err != nil || json.Unmarshal(b, &g) != nil {
		return GuestRecord{}, false
	}
	return g, true
}

// guestProof is what waitHealthy established about a guest: its lease
// and a healthy answer.
type guestProof struct {
	lease netsetup.Lease
}

// guestBudget is one deploy's time for all its guests to be healthy:
// generous (a busy two-core machine boots a hundred guests in seconds),
// growing with their number since boots are bounded.
func guestBudget(n int) time.Duration {
	return 30*time.Second + time.Duration(n)*100*time.Millisecond
}

// observeGuest compares the deployed guest (what its record says runs,
// asked of the runtime it was started with) with the wanted one. In plan
// mode a runtime that cannot answer (no xl here) is reported, not fatal.
// proven, when set, is the lease and health applyGuest just established:
// they are reported as such rather than looked at again.
func (d guestSteps) observeGuest(ctx context.Context, g GuestRecord, plan bool, proven *guestProof) ([]Item, error) {
	have, had := readRecord(g.StateDir)
	cur := g
	if had {
		cur = have
	}
	var items []Item
	running := false
	st, err := d.runtime(cur).State(ctx, d.guestSpec(cur))
	switch {
	case err != nil && !plan:
		return nil, err
	case err != nil:
		items = append(items, ok("state", "running", "unknown: "+err.Error()))
	default:
		running = st.Running
		items = append(items, ok("state", "running", map[bool]string{true: "running", false: "stopped"}[running]))
	}
	cfg := "none"
	if had {
		cfg = "current"
		if have != g {
			cfg = describeRecordDiff(have, g)
		}
	}
	items = append(items, ok("config", "current", cfg))
	if ld, isLD := d.runtime(cur).(vmctl.LiveDiffer); isLD && running && cfg == "current" {
		live := "as rendered"
		diff, err := ld.LiveDiff(ctx, d.guestSpec(cur))
		switch {
		case err != nil:
			live = "unreadable: " + err.Error()
		case len(diff) > 0:
			live = strings.Join(diff, "; ")
		}
		items = append(items, ok("live config", "as rendered", live))
	}
	lease := "none"
	if proven != nil {
		lease = proven.lease.IP.String()
	} else if l, found := d.leaseOf(g); found {
		lease = l.IP.String()
	}
	items = append(items, ok("lease", g.IP.String(), lease))
	health := "healthy"
	switch {
	case !running:
		health = "down"
	case proven != nil:
		// Just answered waitHealthy's probe.
	default:
		if err := probeRetry(ctx, g, 3); err != nil {
			health = "unhealthy: " + err.Error()
		}
	}
	items = append(items, ok("probe from dom0", "healthy", health))
	return items, nil
}

func describeRecordDiff(have, want GuestRecord) string {
	var d []string
	if have.ImageSHA != want.ImageSHA {
		d = append(d, "users image changed")
	}
	if have.KernelID != want.KernelID || have.Kernel != want.Kernel {
		d = append(d, "kernel changed")
	}
	if have.MAC != want.MAC || have.IP != want.IP || have.Port != want.Port || have.Bridge != want.Bridge || have.Runtime != want.Runtime {
		d = append(d, "network or runtime changed")
	}
	if len(d) == 0 {
		d = append(d, "changed")
	}
	return strings.Join(d, ", ")
}

// probeRetry is a probe for a look from outside deploy (status): a few
// tries with growing timeouts, so one SYN or answer lost on a busy
// machine is not reported as an unhealthy guest.
func probeRetry(ctx context.Context, g GuestRecord, tries int) error {
	var err error
	wait, timeout := 50*time.Millisecond, time.Second
	for try := range tries {
		if try > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(wait):
			}
			wait, timeout = 2*wait, 2*timeout
		}
		if err = probe(ctx, g, timeout, timeout); err == nil {
			return nil
		}
	}
	return err
}

// attemptLimit bounds one boot of a guest before it is started afresh
// (within the deploy's deadline): long enough for a slow boot on a busy
// machine, short enough to leave room for another try.
const attemptLimit = 15 * time.Second

// applyGuest (re)starts the guest when it is not running or its config
// changed — stopping the old one with the runtime that started it — then
// waits for its pinned lease and a healthy answer. A boot that fails or
// does not become healthy is retried with backoff until deadline.
func (d guestSteps) applyGuest(ctx context.Context, g GuestRecord, deadline time.Time) (*guestProof, error) {
	if err := d.Journal.Record(Entry{Kind: KindGuest, Name: g.Name, Path: g.StateDir}); err != nil {
		return nil, err
	}
	have, had := readRecord(g.StateDir)
	cur := g
	if had {
		cur = have
	}
	st, err := d.runtime(cur).State(ctx, d.guestSpec(cur))
	if err != nil {
		return nil, err
	}
	restart := !st.Running || have != g
	if ld, isLD := d.runtime(cur).(vmctl.LiveDiffer); isLD && !restart {
		diff, err := ld.LiveDiff(ctx, d.guestSpec(cur))
		restart = err != nil || len(diff) > 0
	}
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		var err error
		if restart {
			err = withBootSlot(ctx, func() error {
				if err := d.runtime(cur).Stop(ctx, d.guestSpec(cur)); err != nil {
					return err
				}
				if err := writeRecord(g); err != nil {
					return err
				}
				return d.runtime(g).Start(ctx, d.guestSpec(g))
			})
		}
		var p *guestProof
		if err == nil {
			limit := min(time.Until(deadline), attemptLimit)
			if p, err = d.waitHealthy(ctx, g, limit); err == nil {
				return p, nil
			}
		}
		if ctx.Err() != nil || hopeless(err) || time.Now().Add(backoff).After(deadline) {
			if attempt > 1 {
				return nil, fmt.Errorf("guest %s: %d boots, the last: %w", g.Name, attempt, err)
			}
			return nil, err
		}
		d.Log.Warn("guest boot failed; starting it again", "guest", g.Name, "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
		// From here the running one is ours (the new record): stop it
		// with its own runtime, start it afresh.
		cur, restart = g, true
	}
}

// hopeless reports an error another boot cannot mend: the lab's own
// state cannot be written (a full disk or quota, a read-only mount). The
// fault suite saw deploy boot a guest 19 times over 29 s on a full state
// directory before saying so; the user has to free space first.
func hopeless(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.EROFS)
}

// stateFull reports whether dir's filesystem has no block left for an
// unprivileged writer (dnsmasq runs as nobody).
func stateFull(dir string) bool {
	var st syscall.Statfs_t
	return syscall.Statfs(dir, &st) == nil && st.Bavail == 0
}

// waitHealthy waits up to limit for g's pinned lease and a healthy answer
// from it, and returns the lease it saw.
func (d guestSteps) waitHealthy(ctx context.Context, g GuestRecord, limit time.Duration) (*guestProof, error) {
	deadline := time.Now().Add(limit)
	spec := d.guestSpec(g)
	var last error
	// Polls start 3 ms apart (a lone guest is healthy in tens of ms) and
	// back off to 50 ms: a hundred guests polling every 3 ms starve the
	// ones still booting on a small machine. The probe's connect timeout
	// grows too: a short one rides over SYNs lost while the guest
	// configures its address; under load a longer one is needed.
	wait, connect := 3*time.Millisecond, 15*time.Millisecond
	for n := 0; ; n++ {
		l, found := d.leaseNow(g)
		if !found || l.IP != g.IP {
			last = fmt.Errorf("no lease for %s (%s) yet", g.MAC, g.IP)
		} else if last = probe(ctx, g, connect, 2*time.Second); last == nil {
			return &guestProof{lease: l}, nil
		} else {
			connect = min(2*connect, 500*time.Millisecond)
		}
		if n%8 == 7 {
			if st, err := d.runtime(g).State(ctx, spec); err == nil && !st.Running {
				return nil, fmt.Errorf("guest %s stopped while booting: see %s", g.Name, filepath.Join(g.StateDir, statedir.ConsoleLog))
			}
			if dir := d.DnsmasqDir(); !found && stateFull(dir) {
				// dnsmasq gave the lease but cannot write its leases
				// file; waiting or booting again changes nothing.
				return nil, fmt.Errorf("guest %s: no lease for %s recorded: %s has no space left, so dnsmasq cannot write its leases: %w",
					g.Name, g.MAC, dir, syscall.ENOSPC)
			}
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("guest %s not healthy after %s: %w", g.Name, limit.Round(time.Millisecond), last)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*3/2, 50*time.Millisecond)
	}
}

func (d guestSteps) observePrune(want []GuestRecord) ([]Item, error) {
	have, err := ReadGuests(d.StateDir)
	if err != nil {
		return nil, err
	}
	var items []Item
	for _, g := range have {
		if !slices.ContainsFunc(want, func(w GuestRecord) bool { return w.Name == g.Name }) {
			items = append(items, ok("guest "+g.Name, "absent (not in the spec)", "deployed"))
		}
	}
	return items, nil
}

func (d guestSteps) applyPrune(ctx context.Context, want []GuestRecord) error {
	have, err := ReadGuests(d.StateDir)
	if err != nil {
		return err
	}
	var gone []GuestRecord
	for _, g := range have {
		if !slices.ContainsFunc(want, func(w GuestRecord) bool { return w.Name == g.Name }) {
			gone = append(gone, g)
		}
	}
	// Side by side: each is mostly waiting for its process to exit.
	return parallelGuests(ctx, gone, 16, d.destroyGuest)
}

// destroyGuest stops a guest, releases its lease and forgets it. Its pin
// goes with the next pins rewrite (deploy) or with dnsmasq (teardown).
func (d guestSteps) destroyGuest(ctx context.Context, g GuestRecord) error {
	if err := d.runtime(g).Stop(ctx, d.guestSpec(g)); err != nil {
		return err
	}
	d.releaseLease(ctx, g)
	if err := os.RemoveAll(g.StateDir); err != nil {
		return fmt.Errorf("removing %s: %w", g.StateDir, err)
	}
	return d.Journal.Forget(Entry{Kind: KindGuest, Name: g.Name, Path: g.StateDir})
}

// releaseLease asks dnsmasq to drop the guest's lease (dhcp_release sends
// a DHCPRELEASE on the guest's behalf), so a destroyed guest's address is
// free at once rather than at lease expiry.
func (d guestSteps) releaseLease(ctx context.Context, g GuestRecord) {
	l, found := d.leaseNow(g)
	if !found {
		return
	}
	if _, err := exec.LookPath("dhcp_release"); err != nil {
		d.Log.Debug("dhcp_release not installed; the lease expires by itself", "guest", g.Name)
		return
	}
	out, err := exec.CommandContext(ctx, "dhcp_release", d.Spec.Network.Bridge, l.IP.String(), g.MAC.String()).CombinedOutput()
	if err != nil {
		d.Log.Warn("releasing lease", "guest", g.Name, "err", err, "out", strings.TrimSpace(string(out)))
	}
}

// DestroyGuest removes one deployed guest by name and its pin.
func (d *Dom0) DestroyGuest(ctx context.Context, name string) error {
	gs, err := ReadGuests(d.StateDir)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(gs, func(g GuestRecord) bool { return g.Name == name })
	if i < 0 {
		var names []string
		for _, g := range gs {
			names = append(names, g.Name)
		}
		return fmt.Errorf("no guest %q in lab %s (deployed: %s)", name, d.Spec.Lab, strings.Join(names, ", "))
	}
	if err := (guestSteps{d}).destroyGuest(ctx, gs[i]); err != nil {
		return err
	}
	rest := slices.Delete(gs, i, i+1)
	if err := (guestSteps{d}).writePins(ctx, d.Dnsmasq(), renderPins(rest)); err != nil {
		// The next deploy sees no mark and reloads.
		d.Log.Warn("dnsmasq not reloaded", "err", err)
	}
	return nil
}

// undoGuest is teardown's undo of KindGuest.
func (d guestSteps) undoGuest(ctx context.Context, e Entry) error {
	b, err := os.ReadFile(filepath.Join(e.Path, statedir.GuestRecord))
	if errors.Is(err, os.ErrNotExist) {
		return nil // never started, or already removed
	}
	if err != nil {
		return err
	}
	var g GuestRecord
	if err := json.Unmarshal(b, &g); err != nil {
		return fmt.Errorf("guest record %s: %w", e.Path, err)
	}
	return d.destroyGuest(ctx, g)
}
