package provision

import (
	"context"
	"errors"
	"fmt"
	"github.com/labctl/labctl/internal/procs"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/labctl/labctl/netsetup"
)

// Teardown undoes the journal in reverse order, forgetting each entry once
// undone, so a teardown that fails half-way resumes where it stopped. It
// uses only the journal, never the spec: what was there before labctl is
// what comes back, even if the spec changed since.
func (d *Dom0) Teardown(ctx context.Context, emit func(StepResult)) ([]StepResult, error) {
	var out []StepResult
	entries := d.Journal.List()
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		start := time.Now()
		r := StepResult{Step: "undo:" + e.Kind, Detail: e.String(), Status: StatusChanged, Items: []Item{}}
		err := d.undo(ctx, e)
		if err == nil {
			err = d.Journal.Forget(e)
		}
		r.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000
		if err != nil {
			r.Status, r.Error = StatusFailed, err.Error()
		}
		out = append(out, r)
		if emit != nil {
			emit(r)
		}
		if err != nil {
			return out, fmt.Errorf("undoing %q: %w", e.String(), err)
		}
	}
	if err := d.Journal.Remove(); err != nil {
		return out, err
	}
	return out, nil
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
	have, err := d.save(ctx)
	if err != nil {
		return err
	}
	t := have.Tables[table]
	if t == nil {
		return nil
	}
	for c, pol := range t.Chains {
		if pol != "ACCEPT" || len(t.Rules[c]) > 0 {
			d.Log.Info("keeping table: it holds rules or chains labctl did not make", "table", table, "chain", c)
			return nil
		}
	}
	_, err = d.IPT.DeleteTable(ctx, table)
	return err
}
