package provision

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labctl/labctl/internal/toolver"
	"github.com/labctl/labctl/netsetup"
	"github.com/labctl/labctl/statedir"
	"github.com/labctl/labctl/vmctl"
	"github.com/vishvananda/netlink"
)

// Journal kinds of the bridge and address steps, kept here beside the
// only code that records them (journal.go's list is another change's).
const (
	KindLinkMAC      = "link-mac"      // Link, Prior: its MAC before labctl set it
	KindRouteRemoved = "route-removed" // Link, Spec (netsetup.Route.Key): a route the address move took off Link; undo adds it back
	KindRouteAdded   = "route-added"   // Link, Spec: a route put on Link; undo removes it
)

// Dom0 is everything the steps act on: dom0's network namespace (the
// process's own), the lab's state directory and journal, and the guests'
// runtimes.
type Dom0 struct {
	network
	// Runtimes boot the guests, by name ("process", "xen").
	Runtimes map[string]vmctl.Runtime
	// Progress, when set, receives lines of long-running work (the
	// unikernel build) as they happen.
	Progress func(step, line string)
}

// network is what dom0's network steps act on, and all they can reach
// (netSteps holds only this): the spec, netlink, sysctl, iptables, the
// state directory and its journal. Guests, runtimes and the xen build
// are Dom0's, beside it.
type network struct {
	Spec     Spec
	NL       *netlink.Handle
	Sysctl   netsetup.Sysctl
	IPT      netsetup.IPTables
	StateDir string
	Journal  *Journal
	Log      *slog.Logger
	// NoResolv: dnsmasq forwards no DNS (the sim's WAN is a dead end).
	NoResolv bool

	// iptBackend is iptables' backend as preflight found it
	// ("nf_tables", "legacy" or "").
	iptBackend string
	// enter runs f inside dom0's network namespace (Options.Enter); nil
	// when the process is there.
	enter func(f func() error) error
	// readOnly: opened for a command that changes nothing (Options.ReadOnly).
	readOnly bool
}

// in runs f inside dom0's network namespace.
func (d *network) in(f func() error) error {
	if d.enter == nil {
		return f()
	}
	return d.enter(f)
}

// entered makes each call of s's Observe and Apply run inside dom0's
// network namespace, on a thread of its own (steps run concurrently).
func (d *network) entered(s Step) Step {
	observe, apply := s.Observe, s.Apply
	s.Observe = func(ctx context.Context) (items []Item, err error) {
		if eerr := d.enter(func() error { items, err = observe(ctx); return nil }); eerr != nil {
			return nil, eerr
		}
		return items, err
	}
	if apply != nil {
		s.Apply = func(ctx context.Context, items []Item) error {
			return d.enter(func() error { return apply(ctx, items) })
		}
	}
	return s
}

// DnsmasqDir is where dnsmasq's files live. It is world-readable (0755)
// because dnsmasq drops root for "nobody" and re-reads its hosts file
// on SIGHUP; nothing in it is secret.
func (d *network) DnsmasqDir() string { return statedir.Of(d.StateDir).Dnsmasq() }

// Dnsmasq is the dnsmasq instance the spec asks for.
func (d *network) Dnsmasq() netsetup.DnsmasqConfig {
	s := d.Spec
	return netsetup.DnsmasqConfig{
		Lab: s.Lab, Bridge: s.Network.Bridge, Router: s.BridgeAddr().Addr(), Subnet: s.Subnet(),
		RangeStart: s.Network.DHCP.Start.Addr(), RangeEnd: s.Network.DHCP.End.Addr(), Lease: time.Duration(s.Network.DHCP.Lease),
		Dir: d.DnsmasqDir(), NoResolv: d.NoResolv,
	}
}

// Steps returns the converge steps in order.
func (d *Dom0) Steps() []Step {
	steps := netSteps{&d.network}.steps()
	if d.enter != nil {
		for i := range steps {
			steps[i] = d.entered(steps[i])
		}
	}
	return steps
}

func (d netSteps) steps() []Step {
	return []Step{
		{Name: "preflight", Observe: d.observePreflight},
		{Name: "bridge", Observe: d.observeBridge, Apply: d.applyBridge},
		{Name: "uplink", Observe: d.observeUplink, Apply: d.applyUplink},
		{Name: "address", Observe: d.observeAddress, Apply: d.applyAddress},
		// The link steps share one netlink handle: they stay one chain.
		{Name: "promisc", Observe: d.observePromisc, Apply: d.applyPromisc, After: []string{"address"}},
		// A sysctl and the rules (which name the bridge but need no link)
		// run beside the link chain.
		{Name: "forwarding", Observe: d.observeForwarding, Apply: d.applyForwarding, After: []string{"preflight"}},
		{Name: "nat", Observe: d.observeNAT, Apply: d.applyNAT, After: []string{"preflight"}},
		// dnsmasq needs only the bridge: with bind-dynamic it starts
		// serving as soon as the address arrives, so it starts beside the
		// uplink and address steps (it uses a netlink handle of its own).
		{Name: "dnsmasq", Observe: d.observeDnsmasq, Apply: d.applyDnsmasq, After: []string{"bridge"}},
	}
}

func (d *network) links() ([]netsetup.Link, error) { return netsetup.Links(d.NL) }

func ok(name, desired, observed string) Item {
	return Item{Name: name, Desired: desired, Observed: observed, OK: desired == observed}
}

// --- preflight -------------------------------------------------------------

func (d netSteps) observePreflight(ctx context.Context) ([]Item, error) {
	// The tool versions are two execs on a machine that has not cached
	// them yet (a cold provision): ask both while the links are read.
	// These goroutines are not on the thread that entered dom0 (see
	// Options.Enter); `--version` does not depend on the namespace.
	tc := openToolCache(filepath.Dir(d.StateDir), d.readOnly)
	var tools [2]Item
	var wg sync.WaitGroup
	wg.Go(func() { tools[0] = dnsmasqItem(ctx, tc) })
	wg.Go(func() { tools[1] = d.iptablesItem(ctx, tc) })
	items, err := d.preflightLinks()
	wg.Wait()
	if err != nil {
		return nil, err
	}
	items = append(items, d.stateDirItem(), tools[0], tools[1])
	tc.save()
	return items, nil
}

// preflightLinks checks the uplink and that the subnet is the lab's alone.
func (d netSteps) preflightLinks() ([]Item, error) {
	n := d.Spec.Network
	ls, err := d.links()
	if err != nil {
		return nil, err
	}
	var items []Item
	if _, found := netsetup.FindLink(ls, n.Uplink); found {
		items = append(items, ok("uplink "+n.Uplink, "present", "present"))
	} else {
		var names []string
		for _, l := range ls {
			if l.Name != "lo" {
				names = append(names, l.Name)
			}
		}
		items = append(items, ok("uplink "+n.Uplink, "present", "missing (interfaces: "+strings.Join(names, ", ")+"; set network.uplink)"))
	}
	// Another interface in the lab's subnet would make routing ambiguous:
	// name it rather than fight over it.
	subnet := d.Spec.Subnet()
	var clash []string
	for _, l := range ls {
		if l.Name == n.Uplink || l.Name == n.Bridge || d.Journal.Has(Entry{Kind: KindLinkCreated, Link: l.Name}) {
			continue
		}
		for _, a := range l.Addrs {
			if a.Overlaps(subnet) {
				clash = append(clash, fmt.Sprintf("%s has %s", l.Name, a))
			}
		}
	}
	if len(clash) == 0 {
		items = append(items, ok("subnet "+subnet.String(), "unused elsewhere", "unused elsewhere"))
	} else {
		items = append(items, ok("subnet "+subnet.String(), "unused elsewhere", "collides: "+strings.Join(clash, ", ")))
	}
	// A link of the bridge's name that is no bridge would fail the bridge
	// step after forwarding and NAT, which run beside it, had changed.
	br, brFound := netsetup.FindLink(ls, n.Bridge)
	if brFound && br.Type != "bridge" {
		items = append(items, ok(n.Bridge, "a bridge, or free", fmt.Sprintf("a %s, not a bridge: rename or delete it, or set network.bridge to another name", br.Type)))
	}
	items = append(items, d.dhcpPortItem(brFound))
	return items, nil
}

// stateDirItem checks that dnsmasq, which drops root for "nobody" before
// it reads its hosts file (the guests' pins), can reach its directory:
// every directory above it must let others traverse it.
func (d netSteps) stateDirItem() Item {
	it := Item{Name: "state directory", Desired: "reachable by dnsmasq (user nobody)"}
	for dir := d.StateDir; ; dir = filepath.Dir(dir) {
		st, err := os.Stat(dir)
		if err == nil && st.Mode().Perm()&0o001 == 0 {
			it.Observed = fmt.Sprintf("%s is mode %o: run chmod o+x %s, or choose another --state-dir", dir, st.Mode().Perm(), dir)
			return it
		}
		if dir == "/" || dir == "." {
			break
		}
	}
	it.Observed, it.OK = it.Desired, true
	return it
}

func dnsmasqItem(ctx context.Context, tc *toolCache) Item {
	it := Item{Name: "dnsmasq", Desired: ">= " + toolver.MinDnsmasq().String()}
	out, err := tc.version("dnsmasq", func() (string, error) {
		b, err := netsetup.DnsmasqCommand(ctx, "--version").Output()
		return string(b), err
	})
	if err != nil {
		it.Observed = "missing: install dnsmasq-base (" + err.Error() + ")"
		return it
	}
	v, err := toolver.Dnsmasq(out)
	if err != nil {
		it.Observed = err.Error()
		return it
	}
	it.Observed = v.String()
	it.OK = toolver.AtLeast("dnsmasq", v, toolver.MinDnsmasq()) == nil
	return it
}

func (d netSteps) iptablesItem(ctx context.Context, tc *toolCache) Item {
	it := Item{Name: "iptables", Desired: ">= " + toolver.MinIPTables().String()}
	line, err := tc.version("iptables", func() (string, error) { return d.IPT.Version(ctx) })
	if err != nil {
		it.Observed = "missing: install iptables (" + err.Error() + ")"
		return it
	}
	v, backend, err := toolver.IPTables(line)
	if err != nil {
		it.Observed = err.Error()
		return it
	}
	it.Observed = v.String()
	if backend != "" {
		it.Observed += " (" + backend + ")"
	}
	d.iptBackend = backend
	it.OK = toolver.AtLeast("iptables", v, toolver.MinIPTables()) == nil
	return it
}

// --- bridge ----------------------------------------------------------------

func (d netSteps) observeBridge(ctx context.Context) ([]Item, error) {
	n := d.Spec.Network
	ls, err := d.links()
	if err != nil {
		return nil, err
	}
	br, found := netsetup.FindLink(ls, n.Bridge)
	up, _ := netsetup.FindLink(ls, n.Uplink)
	items := []Item{}
	switch {
	case !found:
		items = append(items, ok(n.Bridge, "bridge", "missing"))
	default:
		items = append(items, ok(n.Bridge, "bridge", br.Type))
		state := "down"
		if br.Up {
			state = "up"
		}
		items = append(items, ok(n.Bridge+" state", "up", state))
		if up.MAC != nil {
			items = append(items, ok(n.Bridge+" mac", up.MAC.String()+" (the uplink's)", br.MAC.String()+macOwner(br, up)))
		}
	}
	// Bridges labctl created for an earlier spec and no longer wants.
	for _, e := range d.Journal.List() {
		if e.Kind != KindLinkCreated || e.Link == n.Bridge {
			continue
		}
		if _, there := netsetup.FindLink(ls, e.Link); there {
			items = append(items, ok(e.Link, "absent (no longer in the spec)", "present"))
		}
	}
	return items, nil
}

func macOwner(br, up netsetup.Link) string {
	if up.MAC != nil && br.MAC.String() == up.MAC.String() {
		return " (the uplink's)"
	}
	return ""
}

func (d netSteps) applyBridge(ctx context.Context, _ []Item) error {
	n := d.Spec.Network
	ls, err := d.links()
	if err != nil {
		return err
	}
	for _, e := range d.Journal.List() {
		if e.Kind == KindLinkCreated && e.Link != n.Bridge {
			if _, there := netsetup.FindLink(ls, e.Link); there {
				if err := netsetup.RemoveLink(d.NL, e.Link); err != nil {
					return err
				}
			}
		}
	}
	up, _ := netsetup.FindLink(ls, n.Uplink)
	br, found := netsetup.FindLink(ls, n.Bridge)
	switch {
	case !found:
		if err := d.Journal.Record(Entry{Kind: KindLinkCreated, Link: n.Bridge}); err != nil {
			return err
		}
	case br.Type == "bridge" && !d.Journal.Has(Entry{Kind: KindLinkCreated, Link: n.Bridge}):
		// The user's own bridge (one made by hand, as the article does):
		// adopted, like containernetworking/plugins' bridge plugin does,
		// not refused as libvirt does — refusing would make the user
		// delete their bridge for labctl to make the same one. Every
		// property changed on it is journaled first, so teardown gives it
		// back as it was. Only first records count (Journal.Record), so a
		// re-run never overwrites the value from before labctl.
		var es []Entry
		if up.MAC != nil && br.MAC.String() != up.MAC.String() {
			es = append(es, Entry{Kind: KindLinkMAC, Link: n.Bridge, Prior: br.MAC.String()})
		}
		if !br.Up {
			es = append(es, Entry{Kind: KindLinkUp, Link: n.Bridge, PriorBool: boolp(false)})
		}
		if err := d.Journal.Record(es...); err != nil {
			return err
		}
	}
	_, err = netsetup.EnsureBridge(d.NL, n.Bridge, up.MAC)
	return err
}

// --- uplink ----------------------------------------------------------------

func (d netSteps) observeUplink(ctx context.Context) ([]Item, error) {
	n := d.Spec.Network
	ls, err := d.links()
	if err != nil {
		return nil, err
	}
	up, _ := netsetup.FindLink(ls, n.Uplink)
	master := up.Master
	if master == "" {
		master = "none"
	}
	state := "down"
	if up.Up {
		state = "up"
	}
	return []Item{
		ok(n.Uplink+" bridge", n.Bridge, master),
		ok(n.Uplink+" state", "up", state),
	}, nil
}

func (d netSteps) applyUplink(ctx context.Context, _ []Item) error {
	n := d.Spec.Network
	ls, err := d.links()
	if err != nil {
		return err
	}
	up, _ := netsetup.FindLink(ls, n.Uplink)
	if up.Master != n.Bridge {
		if err := d.Journal.Record(Entry{Kind: KindLinkMaster, Link: n.Uplink, Prior: up.Master}); err != nil {
			return err
		}
		if err := netsetup.SetMaster(d.NL, n.Uplink, n.Bridge); err != nil {
			return err
		}
	}
	if !up.Up {
		if err := d.Journal.Record(Entry{Kind: KindLinkUp, Link: n.Uplink, PriorBool: boolp(false)}); err != nil {
			return err
		}
		return netsetup.SetUp(d.NL, n.Uplink, true)
	}
	return nil
}

// --- address ---------------------------------------------------------------

func (d netSteps) observeAddress(ctx context.Context) ([]Item, error) {
	n := d.Spec.Network
	ls, err := d.links()
	if err != nil {
		return nil, err
	}
	br, _ := netsetup.FindLink(ls, n.Bridge)
	up, _ := netsetup.FindLink(ls, n.Uplink)
	want := d.Spec.BridgeAddr()
	have := "absent"
	if slices.Contains(br.Addrs, want) {
		have = want.String()
	}
	items := []Item{ok(n.Bridge+" address", want.String(), have)}
	for _, a := range up.Addrs {
		items = append(items, ok(n.Uplink+" address "+a.String(), "moved to "+n.Bridge, "on "+n.Uplink))
	}
	if len(up.Addrs) > 0 {
		rs, err := netsetup.Routes(d.NL, n.Uplink)
		if err != nil {
			return nil, err
		}
		for _, r := range rs {
			items = append(items, ok("route "+r.String(), "moved to "+n.Bridge, "on "+n.Uplink))
		}
	}
	// Routes taken off the uplink (by the kernel, with its last address)
	// that have not reached the bridge: a run killed half-way leaves these.
	missing, err := d.routesToMove()
	if err != nil {
		return nil, err
	}
	for _, r := range missing {
		items = append(items, ok("route "+r.String(), "on "+n.Bridge, "missing (was on "+n.Uplink+")"))
	}
	return items, nil
}

// routesToMove are the journaled routes of the uplink not yet on the bridge.
func (d netSteps) routesToMove() ([]netsetup.Route, error) {
	n := d.Spec.Network
	var moved []netsetup.Route
	for _, e := range d.Journal.List() {
		if e.Kind != KindRouteRemoved || e.Link != n.Uplink {
			continue
		}
		r, err := netsetup.ParseRoute(e.Spec)
		if err != nil {
			return nil, fmt.Errorf("journal: %w", err)
		}
		moved = append(moved, r)
	}
	if len(moved) == 0 {
		return nil, nil
	}
	on, err := netsetup.Routes(d.NL, n.Bridge)
	if err != nil && !netsetup.IsNotFound(err) {
		return nil, err
	}
	var out []netsetup.Route
	for _, r := range moved {
		if !slices.Contains(on, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// applyAddress moves the uplink's IPv4 addresses to the bridge, and the
// routes that use them. The uplink is already a port, so frames for the
// address arrive through the bridge; the address is added to the bridge
// before it leaves the uplink, so at every instant some interface owns it
// and established TCP connections see, at worst, one retransmission.
//
// Order matters twice. Addresses go onto the bridge primaries first (the
// first address of a subnet is its primary). They leave the uplink
// secondaries first — removing a primary deletes its secondaries unless
// promote_secondaries is set — so the journal holds them primary last and
// teardown, undoing in reverse, adds the primary back first. The kernel
// deletes every route through the uplink with its last address: each is
// journaled before, re-added on the bridge after, and put back on the
// uplink by teardown once its addresses are back.
func (d netSteps) applyAddress(ctx context.Context, _ []Item) error {
	n := d.Spec.Network
	ls, err := d.links()
	if err != nil {
		return err
	}
	br, _ := netsetup.FindLink(ls, n.Bridge)
	up, _ := netsetup.FindLink(ls, n.Uplink)
	if len(up.Addrs) > 0 {
		rs, err := netsetup.Routes(d.NL, n.Uplink)
		if err != nil {
			return err
		}
		var es []Entry
		for _, r := range rs {
			es = append(es, Entry{Kind: KindRouteRemoved, Link: n.Uplink, Spec: r.Key()})
		}
		if err := d.Journal.Record(es...); err != nil {
			return err
		}
	}
	want := append([]netip.Prefix{d.Spec.BridgeAddr()}, up.Addrs...)
	for _, a := range want {
		if slices.Contains(br.Addrs, a) {
			continue
		}
		if err := d.Journal.Record(Entry{Kind: KindAddrAdded, Link: n.Bridge, Addr: a.String()}); err != nil {
			return err
		}
		if err := netsetup.AddAddr(d.NL, n.Bridge, a); err != nil {
			return err
		}
		br.Addrs = append(br.Addrs, a)
	}
	for i := len(up.Addrs) - 1; i >= 0; i-- {
		a := up.Addrs[i]
		if err := d.Journal.Record(Entry{Kind: KindAddrRemoved, Link: n.Uplink, Addr: a.String()}); err != nil {
			return err
		}
		if err := netsetup.DelAddr(d.NL, n.Uplink, a); err != nil {
			return err
		}
	}
	missing, err := d.routesToMove()
	if err != nil {
		return err
	}
	for _, r := range missing {
		if err := d.Journal.Record(Entry{Kind: KindRouteAdded, Link: n.Bridge, Spec: r.Key()}); err != nil {
			return err
		}
		if err := netsetup.AddRoute(d.NL, n.Bridge, r); err != nil {
			return err
		}
	}
	return nil
}

// --- promisc ---------------------------------------------------------------

func (d netSteps) observePromisc(ctx context.Context) ([]Item, error) {
	n := d.Spec.Network
	if !n.Promiscuous {
		return nil, nil
	}
	ls, err := d.links()
	if err != nil {
		return nil, err
	}
	up, _ := netsetup.FindLink(ls, n.Uplink)
	return []Item{ok(n.Uplink+" PROMISC flag", "on", onOff(up.Promisc))}, nil
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func (d netSteps) applyPromisc(ctx context.Context, _ []Item) error {
	n := d.Spec.Network
	ls, err := d.links()
	if err != nil {
		return err
	}
	up, _ := netsetup.FindLink(ls, n.Uplink)
	if err := d.Journal.Record(Entry{Kind: KindPromisc, Link: n.Uplink, PriorBool: boolp(up.Promisc)}); err != nil {
		return err
	}
	return netsetup.SetPromisc(d.NL, n.Uplink, true)
}

// --- forwarding ------------------------------------------------------------

const ipForward = "net.ipv4.ip_forward"

func (d netSteps) observeForwarding(ctx context.Context) ([]Item, error) {
	v, err := d.Sysctl.Get(ipForward)
	if err != nil {
		return nil, err
	}
	return []Item{ok(ipForward, "1", v)}, nil
}

func (d netSteps) applyForwarding(ctx context.Context, _ []Item) error {
	v, err := d.Sysctl.Get(ipForward)
	if err != nil {
		return err
	}
	if err := d.Journal.Record(Entry{Kind: KindSysctl, Key: ipForward, Prior: v}); err != nil {
		return err
	}
	return d.Sysctl.Set(ipForward, "1")
}

// --- nat -------------------------------------------------------------------

func (d *network) rules() netsetup.RuleSet {
	return netsetup.DesiredRules(d.Spec.Lab, d.Spec.Network.Bridge, d.Spec.Subnet(), d.Spec.Network.NAT)
}

// save observes the rules: one iptables-save, unless the nf_tables
// backend's ruleset (read over netlink, in-process) says there is nothing
// to dump, or its digest has been dumped before (rulesmemo.go).
func (d *network) save(ctx context.Context) (netsetup.Saved, error) {
	var rs netsetup.Ruleset
	rsErr := errors.ErrUnsupported // legacy iptables: no nf_tables ruleset to digest
	if d.iptBackend == "nf_tables" {
		rs, rsErr = netsetup.NFTRuleset()
		if rsErr != nil {
			d.Log.Debug("reading the nf_tables ruleset; asking iptables-save", "err", rsErr)
		} else {
			none := true
			for _, t := range d.rules().Tables() {
				none = none && !rs.Tables[t]
			}
			if none {
				return netsetup.Saved{Tables: map[string]*netsetup.SavedTable{}}, nil
			}
			if b, ok := d.recalled(rs.Digest); ok {
				return netsetup.ParseSave(b)
			}
		}
	}
	b, err := d.IPT.Save(ctx)
	if err != nil {
		return netsetup.Saved{}, err
	}
	saved, err := netsetup.ParseSave(b)
	// The dump is the digest's only if nothing committed between the two
	// reads: the same generation after it says so.
	if err == nil && rsErr == nil {
		if g, gerr := netsetup.NFTGeneration(); gerr == nil && g == rs.Gen {
			d.remember(rs.Digest, b)
		}
	}
	return saved, err
}

func (d netSteps) observeNAT(ctx context.Context) ([]Item, error) {
	have, err := d.save(ctx)
	if err != nil {
		return nil, err
	}
	want := d.rules()
	diff := netsetup.Diff(want, have)
	var items []Item
	for _, k := range want.ChainKeys() {
		t, c, _ := strings.Cut(k, "/")
		desired := fmt.Sprintf("%d rules", len(want.Chains[k]))
		observed := "missing"
		if have.HasChain(t, c) {
			observed = fmt.Sprintf("%d rules", len(have.RulesOf(t, c)))
			if slices.Contains(diff.Rewrite, k) {
				observed += " (differ)"
			}
		}
		items = append(items, ok("chain "+k, desired, observed))
	}
	for _, j := range want.Jumps {
		observed := "present"
		if slices.Contains(diff.AddJumps, j) {
			observed = "missing"
		}
		items = append(items, ok("jump "+j.Table+"/"+j.Chain+" → "+targetOf(j.Spec), "present", observed))
	}
	for _, j := range diff.DeleteJumps {
		items = append(items, ok("stale jump "+j.Table+"/"+j.Chain+": "+j.Spec, "absent", "present"))
	}
	return items, nil
}

func targetOf(spec string) string {
	_, t, _ := strings.Cut(spec, "-j ")
	return t
}

func (d netSteps) applyNAT(ctx context.Context, _ []Item) error {
	have, err := d.save(ctx)
	if err != nil {
		return err
	}
	want := d.rules()
	diff := netsetup.Diff(want, have)
	var es []Entry
	for _, t := range want.Tables() {
		if have.Tables[t] == nil {
			es = append(es, Entry{Kind: KindIPTTable, Table: t})
		}
	}
	for _, k := range diff.Rewrite {
		t, c, _ := strings.Cut(k, "/")
		es = append(es, Entry{Kind: KindIPTChain, Table: t, Chain: c})
	}
	for _, j := range diff.AddJumps {
		es = append(es, Entry{Kind: KindIPTJump, Table: j.Table, Chain: j.Chain, Spec: j.Spec})
	}
	if err := d.Journal.Record(es...); err != nil {
		return err
	}
	return d.IPT.Restore(ctx, netsetup.RestorePayload(want, diff))
}

// --- dnsmasq ---------------------------------------------------------------

func (d netSteps) observeDnsmasq(ctx context.Context) ([]Item, error) {
	c := d.Dnsmasq()
	st := netsetup.ObserveDnsmasq(c)
	conf := "missing"
	switch {
	case st.ConfOnDisk == nil:
	case string(st.ConfOnDisk) == string(c.Render()):
		conf = "current"
	default:
		conf = "differs (edited, or the spec changed)"
	}
	proc := "not running"
	if st.Pid > 0 {
		proc = "running"
	}
	items := []Item{
		ok("config "+c.ConfPath(), "current", conf),
		ok("process", "running", proc),
	}
	if st.Pid > 0 {
		l, err := netlink.LinkByName(c.Bridge)
		if err == nil && l.Attrs().Index != st.StartIfIndex {
			items = append(items, ok("serving "+c.Bridge, "current "+c.Bridge, fmt.Sprintf("a deleted %s (index %d, now %d)", c.Bridge, st.StartIfIndex, l.Attrs().Index)))
		}
	}
	return items, nil
}

// applyDnsmasq (re)starts dnsmasq when its config changed, it died, or
// the bridge it served was re-created. A current, running dnsmasq is never
// touched, so it keeps its pid and leases.
func (d netSteps) applyDnsmasq(ctx context.Context, _ []Item) error {
	c := d.Dnsmasq()
	proc := Entry{Kind: KindProcess, Name: "dnsmasq", Path: c.PidPath(), Conf: c.ConfPath()}
	started := d.Journal.Has(proc)
	if err := d.ensureDnsmasqDir(proc); err != nil {
		return err
	}
	// A dnsmasq of this lab can only be running (or stray, from a killed
	// run) if the journal says labctl started one.
	if started {
		if err := netsetup.StopDnsmasq(ctx, c); err != nil {
			return err
		}
	}
	l, err := netlink.LinkByName(c.Bridge)
	if err != nil {
		return fmt.Errorf("dnsmasq needs %s: %w", c.Bridge, err)
	}
	pid, err := netsetup.StartDnsmasq(ctx, c, l.Attrs().Index)
	if err != nil {
		return err
	}
	d.Log.Debug("dnsmasq started", "pid", pid, "conf", c.ConfPath())
	return nil
}

// ensureDnsmasqDir records the directory (if labctl is about to create
// it) together with also, in one journal write, then creates it.
func (d netSteps) ensureDnsmasqDir(also ...Entry) error {
	dir := d.DnsmasqDir()
	if _, err := os.Stat(dir); err == nil {
		return d.Journal.Record(also...)
	}
	if err := d.Journal.Record(append([]Entry{{Kind: KindDir, Path: dir}}, also...)...); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}
	return nil
}

// The lab's parts, by concern. Each is a view of the one Dom0 (its
// namespace, state directory, journal and tools) with the methods of
// one concern: the network steps, the guests, the xen build, the undo.
type (
	netSteps   struct{ *network }
	guestSteps struct{ *Dom0 }
	xenBuild   struct{ *Dom0 }
	undoer     struct {
		*Dom0
		// linkDel: an ip started ahead for the lane's link delete
		// (undoLanes), nil otherwise.
		linkDel *netsetup.LinkDeleter
	}
)
