package provision

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/netsetup"
)

// Teardown undoes the journal in reverse order, forgetting each entry once
// undone, so a teardown that fails half-way resumes where it stopped. It
// uses only the journal, never the spec: what was there before labctl is
// what comes back, even if the spec changed since.
func (d *Dom0) Teardown(ctx context.Context, emit func(StepResult)) ([]StepResult, error) {
	var out []StepResult
	entries := d.Journal.List()
	report := func(e Entry, start time.Time, err error) {
		r := StepResult{Step: "undo:" + e.Kind, Detail: e.String(), Status: StatusChanged, Items: []Item{},
			ElapsedMS: float64(time.Since(start).Microseconds()) / 1000}
		if err != nil {
			r.Status, r.Error = StatusFailed, err.Error()
		}
		out = append(out, r)
		if emit != nil {
			emit(r)
		}
	}
	for i := len(entries) - 1; i >= 0; {
		// A run of firewall entries is undone in one iptables-restore,
		// a run of guests side by side (issue 13: teardown cost 3.4x
		// provision, 13 iptables execs and ~55 ms per guest in turn).
		// Either falls back to one at a time when the batch fails.
		if n := runOf(entries[:i+1], batchKind(entries[i].Kind)); n > 1 {
			run := reversed(entries[i-n+1 : i+1])
			start := time.Now()
			if err := d.undoBatch(ctx, run); err == nil {
				if err := d.Journal.Forget(run...); err != nil {
					report(run[0], start, err)
					return out, fmt.Errorf("undoing %q: %w", run[0].String(), err)
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
		err := d.undo(ctx, e)
		if err == nil {
			err = d.Journal.Forget(e)
		}
		report(e, start, err)
		if err != nil {
			return out, fmt.Errorf("undoing %q: %w", e.String(), err)
		}
		i--
	}
	if err := d.Journal.Remove(); err != nil {
		return out, err
	}
	return out, nil
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
func (d *Dom0) undoBatch(ctx context.Context, run []Entry) error {
	if batchKind(run[0].Kind) == "guest" {
		return d.undoGuests(ctx, run)
	}
	have, err := d.save(ctx)
	if err != nil {
		return err
	}
	if payload := teardownPayload(have, run); len(payload) > 0 {
		if err := d.IPT.Restore(ctx, payload); err != nil {
			return err
		}
	}
	// Tables labctl's rules brought into being go last (they are
	// journaled first), each only if nothing of anyone else's is left.
	var tables []string
	for _, e := range run {
		if e.Kind == KindIPTTable {
			tables = append(tables, e.Table)
		}
	}
	return d.removeTablesIfEmpty(ctx, tables...)
}

// undoGuests stops the guests of run side by side, at most 8 at once
// (each is a process or domain to stop, a namespace and a vif to
// remove: independent of the others).
func (d *Dom0) undoGuests(ctx context.Context, run []Entry) error {
	errs := make([]error, len(run))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, e := range run {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = d.undoGuest(ctx, e)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// teardownPayload is one iptables-restore --noflush input that removes
// what run journaled and have still holds: each journaled jump (as many
// copies as journaled, no more than exist), every jump into a journaled
// chain, then the chain itself (flushed, then deleted). Rules and chains
// already gone are left out, so the payload cannot fail on them.
func teardownPayload(have netsetup.Saved, run []Entry) []byte {
	type ruleKey struct{ table, chain, spec string }
	present := map[ruleKey]int{}
	for tn, t := range have.Tables {
		for c, rules := range t.Rules {
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
	tables := make([]string, 0, len(del)+len(chains))
	for t := range del {
		tables = append(tables, t)
	}
	for t := range chains {
		if _, ok := del[t]; !ok {
			tables = append(tables, t)
		}
	}
	slices.Sort(tables)
	var b strings.Builder
	for _, t := range tables {
		fmt.Fprintf(&b, "*%s\n", t)
		for _, l := range del[t] {
			b.WriteString(l + "\n")
		}
		for _, c := range chains[t] {
			fmt.Fprintf(&b, "-F %s\n", c)
		}
		for _, c := range chains[t] {
			fmt.Fprintf(&b, "-X %s\n", c)
		}
		b.WriteString("COMMIT\n")
	}
	return []byte(b.String())
}

func (d *Dom0) undo(ctx context.Context, e Entry) error {
	switch e.Kind {
	case KindLinkCreated:
		return netsetup.RemoveLink(d.NL, e.Link)
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
		return d.undoGuest(ctx, e)
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

func (d *Dom0) removeJumpsInto(ctx context.Context, table, chain string) error {
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
func (d *Dom0) removeTableIfEmpty(ctx context.Context, table string) error {
	return d.removeTablesIfEmpty(ctx, table)
}

// removeTablesIfEmpty is removeTableIfEmpty for several tables, on one
// iptables-save.
func (d *Dom0) removeTablesIfEmpty(ctx context.Context, tables ...string) error {
	if len(tables) == 0 {
		return nil
	}
	have, err := d.save(ctx)
	if err != nil {
		return err
	}
next:
	for _, table := range tables {
		t := have.Tables[table]
		if t == nil {
			continue
		}
		for c, pol := range t.Chains {
			if pol != "ACCEPT" || len(t.Rules[c]) > 0 {
				d.Log.Info("keeping table: it holds rules or chains labctl did not make", "table", table, "chain", c)
				continue next
			}
		}
		if _, err := d.IPT.DeleteTable(ctx, table); err != nil {
			return err
		}
	}
	return nil
}
