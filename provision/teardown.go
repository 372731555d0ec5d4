package provision

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/internal/toolver"
	"github.com/labctl/labctl/netsetup"
)

// Teardown undoes the journal in reverse order, forgetting each entry once
// undone, so a teardown that fails half-way resumes where it stopped. It
// uses only the journal, never the spec: what was there before labctl is
// what comes back, even if the spec changed since.
//
// Guests go in journal order (their vifs are the bridge's ports, and a
// lease is released through the bridge). Outside the stretch of the
// journal that holds guests, the links' entries and the others (rules,
// dnsmasq, its directory, sysctls) touch disjoint objects, so the two
// are undone side by side, each in reverse order: the bridge's deletion
// is the kernel's slowest step (RTM_DELLINK returns only after
// netdev_run_todo's rcu_barrier(), net/core/dev.c: ~33 ms for an empty
// bridge here, BenchmarkBridgeDelete), and the rest of the teardown now
// fits inside it.
func (d *Dom0) Teardown(ctx context.Context, emit func(StepResult)) ([]StepResult, error) {
	var mu sync.Mutex // the two lanes report side by side
	var out []StepResult
	report := func(e Entry, start time.Time, err error) {
		r := StepResult{Step: "undo:" + e.Kind, Detail: e.String(), Status: StatusChanged, Items: []Item{},
			ElapsedMS: float64(time.Since(start).Microseconds()) / 1000}
		if err != nil {
			r.Status, r.Error = StatusFailed, err.Error()
		}
		mu.Lock()
		defer mu.Unlock()
		out = append(out, r)
		if emit != nil {
			emit(r)
		}
	}
	entries := d.Journal.List()
	first := slices.IndexFunc(entries, func(e Entry) bool { return e.Kind == KindGuest })
	last := len(entries) - 1
	for last >= 0 && entries[last].Kind != KindGuest {
		last--
	}
	var err error
	if first < 0 {
		err = undoer{Dom0: d}.undoLanes(ctx, entries, report)
	} else {
		err = undoer{Dom0: d}.undoLanes(ctx, entries[last+1:], report)
		if err == nil {
			err = undoer{Dom0: d}.undoInOrder(ctx, entries[first:last+1], report)
		}
		if err == nil {
			err = undoer{Dom0: d}.undoLanes(ctx, entries[:first], report)
		}
	}
	if err != nil {
		return out, err
	}
	if err := d.Journal.Remove(); err != nil {
		return out, err
	}
	return out, nil
}

// undoLanes undoes es (no guests among them): the links' entries beside
// the rest, each lane in reverse journal order.
func (d undoer) undoLanes(ctx context.Context, es []Entry, report func(Entry, time.Time, error)) error {
	var links, rest []Entry
	for _, e := range es {
		if linkKind(e.Kind) {
			links = append(links, e)
		} else {
			rest = append(rest, e)
		}
	}
	if len(links) == 0 || len(rest) == 0 {
		return d.undoInOrder(ctx, es, report)
	}
	var errs [2]error
	var wg sync.WaitGroup
	wg.Go(func() {
		ld := d
		if slices.ContainsFunc(links, func(e Entry) bool { return e.Kind == KindLinkCreated }) {
			// The ip that deletes the bridge starts now, beside the
			// lane's other undos (netsetup.LinkDeleter); without it, it
			// starts when needed.
			d.in(func() (err error) { ld.linkDel, err = netsetup.StartLinkDeleter(); return err })
			defer ld.linkDel.Close()
		}
		errs[0] = ld.undoInOrder(ctx, linkDeleteEarly(links), report)
	})
	errs[1] = d.undoInOrder(ctx, rest, report)
	wg.Wait()
	return errors.Join(errs[:]...)
}

// linkDeleteEarly reorders a link lane that made one link (the bridge)
// so that its delete, the slowest undo, starts as early as it may: after
// the undos newer than it that give addresses and routes back to other
// links (so that some link owns them at every instant, as in provision),
// before the other newer ones, which the delete makes moot (the bridge's
// own address, state and MAC) or which concern other links only (a
// port's master, which the delete releases anyway; promiscuous mode;
// sysctls). Entries older than the bridge stay last. undoInOrder goes
// from the end: the slice is the older entries, the rest, the delete,
// then the restores, each part in journal order. Any other lane is as it
// was.
func linkDeleteEarly(links []Entry) []Entry {
	made := func(e Entry) bool { return e.Kind == KindLinkCreated }
	i := slices.IndexFunc(links, made)
	if i < 0 || slices.ContainsFunc(links[i+1:], made) {
		return links
	}
	var first, after []Entry
	for _, e := range links[i+1:] {
		switch e.Kind {
		case KindAddrRemoved, KindRouteRemoved, KindRouteAdded:
			first = append(first, e)
		default:
			after = append(after, e)
		}
	}
	return slices.Concat(links[:i], after, links[i:i+1], first)
}

// linkKind tells the journal kinds that change links, their addresses
// and routes (all through the lab's one netlink handle) from the rest.
// Sysctls go with them: writing net.ipv4.ip_forward takes RTNL, and when
// it is held (the bridge's delete holds it for ~20 ms) the write restarts
// the syscall until it gets it (devinet_sysctl_forward: rtnl_net_trylock,
// else restart_syscall(); net/ipv4/devinet.c), a busy loop that took one
// of two cores from the delete. In this lane it runs after the bridge is
// gone (linkDeleteEarly).
func linkKind(kind string) bool {
	switch kind {
	case KindLinkCreated, KindLinkMaster, KindLinkUp, KindLinkMAC, KindRouteRemoved, KindRouteAdded,
		KindPromisc, KindAddrRemoved, KindAddrAdded, KindSysctl:
		return true
	}
	return false
}

// undoInOrder undoes es newest first. A run of firewall entries is undone
// in one iptables-restore, a run of guests side by side (issue 13:
// teardown cost 3.4x provision, 13 iptables execs and ~55 ms per guest in
// turn); either falls back to one at a time when the batch fails.
func (d undoer) undoInOrder(ctx context.Context, entries []Entry, report func(Entry, time.Time, error)) error {
	for i := len(entries) - 1; i >= 0; {
		if n := runOf(entries[:i+1], batchKind(entries[i].Kind)); n > 1 {
			run := reversed(entries[i-n+1 : i+1])
			start := time.Now()
			if err := d.undoBatch(ctx, run); err == nil {
				if err := d.Journal.Forget(run...); err != nil {
					report(run[0], start, err)
					return fmt.Errorf("undoing %q: %w", run[0].String(), err)
				}
				for _, e := range run {
					report(e, start, nil)
				}
				i -= n
				continue
			} else {
				d.Log.Info("batched undo failed; undoing one at a time", "entries", n, "err", err)
			}
		}
		e := entries[i]
		start := time.Now()
		err := d.in(func() error { return d.undo(ctx, e) })
		if err == nil {
			err = d.Journal.Forget(e)
		}
		report(e, start, err)
		if err != nil {
			return fmt.Errorf("undoing %q: %w", e.String(), err)
		}
		i--
	}
	return nil
}

// batchKind groups the journal kinds undone together: "ipt" for jumps
// and chains, "guest" for guests, "" for the rest (one at a time).
func batchKind(kind string) string {
	switch kind {
	case KindIPTJump, KindIPTChain, KindIPTTable:
		return "ipt"
	case KindGuest:
		return "guest"
	}
	return ""
}

// runOf counts the entries at the end of es whose batchKind is group
// (0 when group is "").
func runOf(es []Entry, group string) int {
	if group == "" {
		return 0
	}
	n := 0
	for i := len(es) - 1; i >= 0 && batchKind(es[i].Kind) == group; i-- {
		n++
	}
	return n
}

func reversed(es []Entry) []Entry {
	out := make([]Entry, len(es))
	for i, e := range es {
		out[len(es)-1-i] = e
	}
	return out
}

// undoBatch undoes run (newest first, all of one batchKind) at once.
func (d undoer) undoBatch(ctx context.Context, run []Entry) error {
	if batchKind(run[0].Kind) == "guest" {
		return d.undoGuests(ctx, run)
	}
	return d.in(func() error { return d.undoFirewall(ctx, run) })
}

// undoFirewall undoes a run of firewall entries from one iptables-save:
// the jumps and chains go in one iptables-restore, and a table labctl's
// rules brought into being that would be left holding nothing is instead
// deleted whole, all such tables in one nf_tables transaction (issue 13:
// a save, a restore, a second save and one `nft` per table were 70 ms of
// a 140 ms teardown). Emptiness is decided on that one save: a rule
// someone adds to such a table in the instant between it and the delete
// goes with the table (the earlier second save had the same window).
func (d undoer) undoFirewall(ctx context.Context, run []Entry) error {
	d.iptablesBackend(ctx) // lets save skip iptables-save when no table exists
	have, err := d.save(ctx)
	if err != nil {
		return err
	}
	u := planFirewallUndo(have, run)
	drop := map[string]bool{}
	for _, e := range run {
		if e.Kind != KindIPTTable || have.Tables[e.Table] == nil {
			continue
		}
		switch {
		case !u.empty[e.Table]:
			d.Log.Info("keeping table: it holds rules or chains labctl did not make", "table", e.Table)
		case d.iptBackend == "nf_tables":
			drop[e.Table] = true
		}
		// The legacy backend's tables are built in: they stay.
	}
	if payload := u.payload(drop); len(payload) > 0 {
		if err := d.IPT.Restore(ctx, payload); err != nil {
			return err
		}
	}
	if len(drop) == 0 {
		return nil
	}
	tables := slices.Sorted(maps.Keys(drop))
	return d.IPT.DeleteTables(ctx, tables...)
}

// iptablesBackend is iptables' backend ("nf_tables", "legacy" or "" when
// unknown), from the tool cache preflight fills: teardown runs no
// preflight, and `iptables --version` is an exec.
func (d *network) iptablesBackend(ctx context.Context) string {
	if d.iptBackend != "" {
		return d.iptBackend
	}
	tc := openToolCache(filepath.Dir(d.StateDir), d.readOnly)
	line, err := tc.version("iptables", func() (string, error) { return d.IPT.Version(ctx) })
	if err != nil {
		return ""
	}
	tc.save()
	if _, backend, err := toolver.IPTables(line); err == nil {
		d.iptBackend = backend
	}
	return d.iptBackend
}

// undoGuests stops the guests of run side by side, at most 8 at once
// (each is a process or domain to stop, a namespace and a vif to
// remove: independent of the others), each on a thread inside dom0.
func (d undoer) undoGuests(ctx context.Context, run []Entry) error {
	errs := make([]error, len(run))
	eachBounded(len(run), 8, func(i int) {
		errs[i] = d.in(func() error { return guestSteps{d.Dom0}.undoGuest(ctx, run[i]) })
	})
	return errors.Join(errs...)
}

// firewallUndo is what undoing a run of firewall entries does to one
// iptables-save: iptables-restore --noflush lines per table, and which
// tables are then left holding nothing of anyone's.
type firewallUndo struct {
	lines map[string][]string // table -> "-D …" lines, then "-F", then "-X"
	empty map[string]bool     // table -> only empty built-in chains with ACCEPT policy left
}

// planFirewallUndo removes what run journaled and have still holds: each
// journaled jump (as many copies as journaled, no more than exist), every
// jump into a journaled chain, then the chain itself (flushed, then
// deleted). Rules and chains already gone are left out, so the payload
// cannot fail on them.
func planFirewallUndo(have netsetup.Saved, run []Entry) firewallUndo {
	type ruleKey struct{ table, chain, spec string }
	present := map[ruleKey]int{}
	left := map[string]map[string]int{} // table -> chain -> rules left
	for tn, t := range have.Tables {
		left[tn] = map[string]int{}
		for c, rules := range t.Rules {
			left[tn][c] = len(rules)
			for _, r := range rules {
				present[ruleKey{tn, c, r}]++
			}
		}
	}
	del := map[string][]string{}    // table -> "-D chain spec" lines, in order
	chains := map[string][]string{} // table -> chains to remove
	take := func(k ruleKey) {
		if present[k] > 0 {
			present[k]--
			left[k.table][k.chain]--
			del[k.table] = append(del[k.table], fmt.Sprintf("-D %s %s", k.chain, k.spec))
		}
	}
	for _, e := range run {
		switch e.Kind {
		case KindIPTJump:
			take(ruleKey{e.Table, e.Chain, e.Spec})
		case KindIPTChain:
			if !have.HasChain(e.Table, e.Chain) {
				continue
			}
			t := have.Tables[e.Table]
			for _, c := range t.Order {
				for _, r := range t.Rules[c] {
					if strings.HasSuffix(r, "-j "+e.Chain) {
						take(ruleKey{e.Table, c, r})
					}
				}
			}
			chains[e.Table] = append(chains[e.Table], e.Chain)
		}
	}
	u := firewallUndo{lines: map[string][]string{}, empty: map[string]bool{}}
	for tn, t := range have.Tables {
		gone := map[string]bool{}
		for _, c := range chains[tn] {
			gone[c] = true
		}
		empty := true
		for c, pol := range t.Chains {
			if !gone[c] && (pol != "ACCEPT" || left[tn][c] > 0) {
				empty = false // a user chain ("-"), a DROP policy, or rules
			}
		}
		u.empty[tn] = empty
		lines := del[tn]
		for _, c := range chains[tn] {
			lines = append(lines, "-F "+c)
		}
		for _, c := range chains[tn] {
			lines = append(lines, "-X "+c)
		}
		if len(lines) > 0 {
			u.lines[tn] = lines
		}
	}
	return u
}

// payload is the iptables-restore --noflush input for every table but
// those in skip (deleted whole instead).
func (u firewallUndo) payload(skip map[string]bool) []byte {
	var b strings.Builder
	for _, t := range slices.Sorted(maps.Keys(u.lines)) {
		if skip[t] {
			continue
		}
		fmt.Fprintf(&b, "*%s\n", t)
		for _, l := range u.lines[t] {
			b.WriteString(l + "\n")
		}
		b.WriteString("COMMIT\n")
	}
	return []byte(b.String())
}

func (d undoer) undo(ctx context.Context, e Entry) error {
	switch e.Kind {
	case KindLinkCreated:
		// Done once the link has left dom0, not when the kernel has freed
		// it: a grace period later (netsetup.RemoveLinkDetached).
		return netsetup.RemoveLinkDetached(d.NL, e.Link, 2*time.Second, d.linkDel)
	case KindLinkMaster:
		if _, err := d.NL.LinkByName(e.Link); netsetup.IsNotFound(err) {
			return nil
		}
		return netsetup.SetMaster(d.NL, e.Link, e.Prior)
	case KindLinkUp:
		if _, err := d.NL.LinkByName(e.Link); netsetup.IsNotFound(err) {
			return nil
		}
		return netsetup.SetUp(d.NL, e.Link, deref(e.PriorBool))
	case KindLinkMAC:
		mac, err := net.ParseMAC(e.Prior)
		if err != nil {
			return fmt.Errorf("journal MAC of %s %q: %w", e.Link, e.Prior, err)
		}
		if _, err := d.NL.LinkByName(e.Link); netsetup.IsNotFound(err) {
			return nil
		}
		return netsetup.SetMAC(d.NL, e.Link, mac)
	case KindRouteRemoved:
		r, err := netsetup.ParseRoute(e.Spec)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		if _, err := d.NL.LinkByName(e.Link); netsetup.IsNotFound(err) {
			return nil
		}
		return netsetup.AddRoute(d.NL, e.Link, r)
	case KindRouteAdded:
		r, err := netsetup.ParseRoute(e.Spec)
		if err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		return netsetup.DelRoute(d.NL, e.Link, r)
	case KindPromisc:
		if _, err := d.NL.LinkByName(e.Link); netsetup.IsNotFound(err) {
			return nil
		}
		return netsetup.SetPromisc(d.NL, e.Link, deref(e.PriorBool))
	case KindAddrRemoved:
		p, err := netip.ParsePrefix(e.Addr)
		if err != nil {
			return fmt.Errorf("journal address %q: %w", e.Addr, err)
		}
		if _, err := d.NL.LinkByName(e.Link); netsetup.IsNotFound(err) {
			return nil
		}
		return netsetup.AddAddr(d.NL, e.Link, p)
	case KindAddrAdded:
		p, err := netip.ParsePrefix(e.Addr)
		if err != nil {
			return fmt.Errorf("journal address %q: %w", e.Addr, err)
		}
		return netsetup.DelAddr(d.NL, e.Link, p)
	case KindSysctl:
		return d.Sysctl.Set(e.Key, e.Prior)
	case KindIPTJump:
		return d.IPT.DeleteRule(ctx, e.Table, e.Chain, e.Spec)
	case KindIPTChain:
		// Jumps recorded later were undone first; any other jump into the
		// chain (an older spec's) must go too, or the chain cannot be deleted.
		if err := d.removeJumpsInto(ctx, e.Table, e.Chain); err != nil {
			return err
		}
		return d.IPT.DeleteChain(ctx, e.Table, e.Chain)
	case KindIPTTable:
		return d.removeTableIfEmpty(ctx, e.Table)
	case KindProcess:
		return procs.StopDaemon(ctx, e.Path, e.Name, "--conf-file="+e.Conf)
	case KindGuest:
		return guestSteps{d.Dom0}.undoGuest(ctx, e)
	case KindNote:
		return nil // an event (a rollback), no object
	case KindDir:
		if err := os.RemoveAll(e.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing %s: %w", e.Path, err)
		}
		return nil
	}
	return fmt.Errorf("unknown journal entry kind %q (written by a newer labctl?)", e.Kind)
}

func (d undoer) removeJumpsInto(ctx context.Context, table, chain string) error {
	have, err := d.save(ctx)
	if err != nil {
		return err
	}
	t := have.Tables[table]
	if t == nil {
		return nil
	}
	for c, rules := range t.Rules {
		for _, r := range rules {
			if strings.HasSuffix(r, "-j "+chain) {
				if err := d.IPT.DeleteRule(ctx, table, c, r); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// removeTableIfEmpty deletes a table labctl's rules brought into being,
// once nothing but empty built-in chains with ACCEPT policy is left in
// it — so iptables-save prints exactly what it printed before.
func (d undoer) removeTableIfEmpty(ctx context.Context, table string) error {
	return d.undoFirewall(ctx, []Entry{{Kind: KindIPTTable, Table: table}})
}
