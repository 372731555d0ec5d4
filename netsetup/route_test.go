package netsetup

import (
	"crypto/rand"
	"encoding/hex"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/testenv"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

func TestRouteKeyRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Route
		text string
	}{
		{"default via gw", Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("10.0.0.1"), Table: 254, Proto: 3}, "default via 10.0.0.1"},
		{"with src and metric", Route{Dst: netip.MustParsePrefix("198.51.100.0/24"), Gw: netip.MustParseAddr("10.0.0.1"), Src: netip.MustParseAddr("10.0.0.50"), Metric: 7, Table: 254}, "198.51.100.0/24 via 10.0.0.1 src 10.0.0.50 metric 7"},
		{"link scope, other table", Route{Dst: netip.MustParsePrefix("203.0.113.0/24"), Table: 100, Scope: 253, Proto: 4}, "203.0.113.0/24 table 100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseRoute(tc.r.Key())
			if err != nil || got != tc.r {
				t.Fatalf("ParseRoute(Key()) = %+v, %v; want %+v", got, err, tc.r)
			}
			if s := tc.r.String(); s != tc.text {
				t.Errorf("String() = %q, want %q", s, tc.text)
			}
		})
	}
}

func TestParseRouteRejects(t *testing.T) {
	for _, in := range []string{"", "{}", `{"dst":"nonsense"}`, `{"dst":"10.0.0.0/8","gw":"x"}`, "[1]"} {
		if r, err := ParseRoute(in); err == nil {
			t.Errorf("ParseRoute(%q) = %+v, want an error", in, r)
		}
	}
}

func FuzzParseRoute(f *testing.F) {
	f.Add(Route{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: netip.MustParseAddr("10.0.0.1"), Table: 254}.Key())
	f.Add(`{"dst":"1.2.3.0/24"}`)
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRoute(s)
		if err != nil {
			return
		}
		back, err := ParseRoute(r.Key())
		if err != nil || back != r {
			t.Fatalf("%q: parsed %+v, its key parses to %+v, %v", s, r, back, err)
		}
	})
}

// newNS makes a uniquely named namespace, removed in t.Cleanup.
func newNS(t *testing.T) *netlink.Handle {
	t.Helper()
	_, h := newNamedNS(t)
	return h
}

// newNamedNS is newNS, with the namespace's name.
func newNamedNS(t *testing.T) (string, *netlink.Handle) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "ip")
	b := make([]byte, 4)
	rand.Read(b)
	name := "nsrt" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	ns, err := netns.GetFromName(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return name, h
}

// Addresses list primaries first; removing secondaries first and adding
// back in list order keeps the primary; routes through a link are listed
// without the kernel's own, and move to another link and back.
func TestAddressOrderAndRouteMove(t *testing.T) {
	h := newNS(t)
	for _, l := range []netlink.Link{
		&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "up0"}, PeerName: "up0p"},
		&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br9"}},
	} {
		if err := h.LinkAdd(l); err != nil {
			t.Fatal(err)
		}
	}
	for _, n := range []string{"up0", "up0p", "br9"} {
		if err := SetUp(h, n, true); err != nil {
			t.Fatal(err)
		}
	}
	primary, secondary := netip.MustParsePrefix("10.7.0.2/24"), netip.MustParsePrefix("10.7.0.50/24")
	// The secondary is added second, so the kernel lists it first only if
	// Links' ordering is wrong: add the primary, then the secondary.
	for _, p := range []netip.Prefix{primary, secondary} {
		if err := AddAddr(h, "up0", p); err != nil {
			t.Fatal(err)
		}
	}
	gw := netip.MustParseAddr("10.7.0.1")
	want := []Route{
		{Dst: netip.MustParsePrefix("198.51.100.0/24"), Gw: gw, Table: 254, Proto: 3},
		{Dst: netip.MustParsePrefix("198.51.101.0/24"), Gw: gw, Src: secondary.Addr(), Table: 254, Proto: 3},
		{Dst: netip.MustParsePrefix("0.0.0.0/0"), Gw: gw, Table: 100, Proto: 3},
	}
	for _, r := range want {
		if err := AddRoute(h, "up0", r); err != nil {
			t.Fatal(err)
		}
		if err := AddRoute(h, "up0", r); err != nil {
			t.Fatalf("adding %s twice: %v", r, err)
		}
	}
	ls, err := Links(h)
	if err != nil {
		t.Fatal(err)
	}
	up, _ := FindLink(ls, "up0")
	if !slices.Equal(up.Addrs, []netip.Prefix{primary, secondary}) || !slices.Equal(up.Secondary, []netip.Prefix{secondary}) {
		t.Fatalf("up0 addrs %v secondary %v; want [%s %s], [%s]", up.Addrs, up.Secondary, primary, secondary, secondary)
	}
	got, err := Routes(h, "up0")
	if err != nil {
		t.Fatal(err)
	}
	if !sameRoutes(got, want) {
		t.Fatalf("Routes(up0) = %v, want %v", got, want)
	}

	// Move: onto br9 in list order, off up0 secondaries first.
	for _, a := range up.Addrs {
		if err := AddAddr(h, "br9", a); err != nil {
			t.Fatal(err)
		}
	}
	for i := len(up.Addrs) - 1; i >= 0; i-- {
		if err := DelAddr(h, "up0", up.Addrs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if left, _ := Routes(h, "up0"); len(left) != 0 {
		t.Fatalf("routes left on up0 without addresses: %v", left)
	}
	for _, r := range want {
		if err := AddRoute(h, "br9", r); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := Routes(h, "br9"); !sameRoutes(got, want) {
		t.Fatalf("Routes(br9) = %v, want %v", got, want)
	}

	// Back, as teardown does it: routes off br9, addresses onto up0 in
	// order, routes back onto up0.
	for _, r := range want {
		if err := DelRoute(h, "br9", r); err != nil {
			t.Fatal(err)
		}
		if err := DelRoute(h, "br9", r); err != nil {
			t.Fatalf("removing %s twice: %v", r, err)
		}
	}
	for _, a := range up.Addrs {
		if err := AddAddr(h, "up0", a); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range want {
		if err := AddRoute(h, "up0", r); err != nil {
			t.Fatal(err)
		}
	}
	ls, _ = Links(h)
	back, _ := FindLink(ls, "up0")
	if !slices.Equal(back.Addrs, up.Addrs) || !slices.Equal(back.Secondary, up.Secondary) {
		t.Fatalf("up0 after the way back: %v (secondary %v), want %v (secondary %v)", back.Addrs, back.Secondary, up.Addrs, up.Secondary)
	}
	if got, _ := Routes(h, "up0"); !sameRoutes(got, want) {
		t.Fatalf("Routes(up0) after the way back = %v, want %v", got, want)
	}
}

// inNamedNS runs f on a thread of its own inside the named namespace.
func inNamedNS(name string, f func() error) error {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer ns.Close()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := netns.Set(ns); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

func sameRoutes(a, b []Route) bool {
	if len(a) != len(b) {
		return false
	}
	for _, r := range b {
		if !slices.Contains(a, r) {
			return false
		}
	}
	return true
}

// DeleteTables removes ip-family nf_tables tables in one transaction; a
// table already gone is success, and does not keep the others.
func TestDeleteTables(t *testing.T) {
	name, _ := newNamedNS(t)
	testenv.RequireTool(t, "iptables")
	if v, _ := NewSystem().Version(t.Context()); !strings.Contains(v, "nf_tables") {
		if testenv.InCI() { // .ci/run's Debian has the nf_tables backend
			t.Fatalf("iptables is %q, CI expects the nf_tables backend", v)
		}
		t.Skipf("iptables is %q: tables are deleted only on the nf_tables backend", v)
	}
	for _, table := range []string{"nat", "filter", "mangle"} {
		if out, err := exec.Command("ip", "netns", "exec", name, "iptables", "-t", table, "-N", "TESTCHAIN").CombinedOutput(); err != nil {
			t.Fatalf("creating a chain in %s: %v: %s", table, err, out)
		}
	}
	in := func(f func() error) error { return inNamedNS(name, f) }
	tables := func() []string {
		var have Ruleset
		if err := in(func() (err error) { have, err = NFTRuleset(); return err }); err != nil {
			t.Fatal(err)
		}
		return slices.Sorted(maps.Keys(have.Tables))
	}
	if got := tables(); !slices.Equal(got, []string{"filter", "mangle", "nat"}) {
		t.Fatalf("tables before: %v", got)
	}
	// "raw" was never there: the batch is refused, each is then deleted alone.
	if err := in(func() error { return NewSystem().DeleteTables(t.Context(), "nat", "raw", "filter") }); err != nil {
		t.Fatalf("DeleteTables: %v", err)
	}
	if got := tables(); !slices.Equal(got, []string{"mangle"}) {
		t.Fatalf("tables after deleting nat and filter: %v, want [mangle]", got)
	}
	if err := in(func() error { return NewSystem().DeleteTables(t.Context(), "nat") }); err != nil {
		t.Fatalf("deleting a table already gone: %v", err)
	}
}

// RemoveLinkDetached returns with the link out of the namespace, its port
// released and its name free, whether its ip deletes it or (ip missing or
// failing) it deletes the link itself; a missing link is success.
func TestRemoveLinkDetached(t *testing.T) {
	realIP, err := exec.LookPath("ip")
	if err != nil {
		t.Skip("no ip")
	}
	counting, failing := t.TempDir(), t.TempDir()
	ran := filepath.Join(counting, "ran")
	shims := map[string]string{
		counting: "#!/bin/sh\n: > " + ran + "\nexec " + realIP + " \"$@\"\n",
		failing:  "#!/bin/sh\nexit 1\n",
	}
	for dir, script := range shims {
		if err := os.WriteFile(filepath.Join(dir, "ip"), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name  string
		path  string
		ahead bool // a LinkDeleter started before
	}{
		{"ip deletes", counting, false},
		{"ip started ahead deletes", counting, true},
		{"no ip", t.TempDir(), false},
		{"ip fails", failing, false},
		{"ip started ahead fails", failing, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, h := newNamedNS(t)
			for _, l := range []netlink.Link{
				&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br7"}},
				&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "p0"}, PeerName: "p0p"},
			} {
				if err := h.LinkAdd(l); err != nil {
					t.Fatal(err)
				}
			}
			if err := SetMaster(h, "p0", "br7"); err != nil {
				t.Fatal(err)
			}
			t.Setenv("PATH", tc.path)
			os.Remove(ran)
			err := inNamedNS(ns, func() error {
				var del *LinkDeleter
				if tc.ahead {
					var err error
					if del, err = StartLinkDeleter(); err != nil {
						return err
					}
					defer del.Close()
				}
				return RemoveLinkDetached(h, "br7", 2*time.Second, del)
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(ran); tc.path == counting && err != nil {
				t.Fatalf("ip was never run: %v", err)
			}
			if _, err := h.LinkByName("br7"); !IsNotFound(err) {
				t.Fatalf("br7 after RemoveLinkDetached: %v, want not found", err)
			}
			p, err := h.LinkByName("p0")
			if err != nil {
				t.Fatal(err)
			}
			if p.Attrs().MasterIndex != 0 {
				t.Fatalf("p0 still has master %d", p.Attrs().MasterIndex)
			}
			// The name is free at once.
			if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br7"}}); err != nil {
				t.Fatalf("a new br7 right after: %v", err)
			}
			if err := inNamedNS(ns, func() error { return RemoveLinkDetached(h, "nosuch", time.Second, nil) }); err != nil {
				t.Fatalf("a missing link: %v", err)
			}
		})
	}
}

// A deleter started and never used exits once closed, deleting nothing.
func TestLinkDeleterUnused(t *testing.T) {
	ns, h := newNamedNS(t)
	if err := h.LinkAdd(&netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: "br8"}}); err != nil {
		t.Fatal(err)
	}
	var del *LinkDeleter
	if err := inNamedNS(ns, func() (err error) { del, err = StartLinkDeleter(); return err }); err != nil {
		t.Fatal(err)
	}
	del.Close()
	select {
	case err := <-del.exited:
		if err != nil {
			t.Fatalf("ip of an empty batch: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a closed, unused deleter's ip still runs")
	}
	if _, err := h.LinkByName("br8"); err != nil {
		t.Fatalf("an unused deleter deleted something: %v", err)
	}
	if _, ok := del.delete("br8"); ok {
		t.Fatal("a closed deleter took a delete")
	}
}
