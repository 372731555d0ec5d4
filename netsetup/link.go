package netsetup

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// retry runs a netlink dump again when the kernel reports it was
// interrupted by a concurrent change (netlink.ErrDumpInterrupted).
func retry[T any](f func() (T, error)) (T, error) {
	var v T
	var err error
	for range 5 {
		v, err = f()
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			return v, err
		}
	}
	return v, err
}

// IsNotFound reports whether err says a link does not exist.
func IsNotFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.As(err, &lnf) || errors.Is(err, unix.ENODEV)
}

// Link is what labctl observes about one interface.
type Link struct {
	Name    string
	Index   int
	Type    string // "bridge", "veth", "device", ...
	Up      bool   // IFF_UP as set by the admin
	Promisc bool   // the IFF_PROMISC flag itself, not the bridge's promiscuity counter
	Master  string // bridge it is a port of, "" if none
	MAC     net.HardwareAddr
	// Addrs are the IPv4 addresses, primaries first: an address added
	// after a primary of its subnet becomes a secondary, so this is the
	// order that puts them back as they were.
	Addrs []netip.Prefix
	// Secondary are those of Addrs the kernel flags IFA_F_SECONDARY.
	Secondary []netip.Prefix
}

// Links lists every interface of the namespace with its IPv4 addresses.
func Links(h *netlink.Handle) ([]Link, error) {
	ls, err := retry(h.LinkList)
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}
	addrs, err := retry(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_V4) })
	if err != nil {
		return nil, fmt.Errorf("listing addresses: %w", err)
	}
	byIndex := map[int]string{}
	for _, l := range ls {
		byIndex[l.Attrs().Index] = l.Attrs().Name
	}
	out := make([]Link, 0, len(ls))
	for _, l := range ls {
		a := l.Attrs()
		x := Link{
			Name:    a.Name,
			Index:   a.Index,
			Type:    l.Type(),
			Up:      a.Flags&net.FlagUp != 0,
			Promisc: a.RawFlags&unix.IFF_PROMISC != 0,
			Master:  byIndex[a.MasterIndex],
			MAC:     a.HardwareAddr,
		}
		for _, ad := range addrs {
			if ad.LinkIndex == a.Index && ad.Flags&unix.IFA_F_SECONDARY == 0 {
				if p, ok := prefixOf(ad.IPNet); ok {
					x.Addrs = append(x.Addrs, p)
				}
			}
		}
		for _, ad := range addrs {
			if ad.LinkIndex == a.Index && ad.Flags&unix.IFA_F_SECONDARY != 0 {
				if p, ok := prefixOf(ad.IPNet); ok {
					x.Addrs = append(x.Addrs, p)
					x.Secondary = append(x.Secondary, p)
				}
			}
		}
		out = append(out, x)
	}
	return out, nil
}

// FindLink returns the named link from a Links result.
func FindLink(ls []Link, name string) (Link, bool) {
	for _, l := range ls {
		if l.Name == name {
			return l, true
		}
	}
	return Link{}, false
}

func prefixOf(n *net.IPNet) (netip.Prefix, bool) {
	if n == nil {
		return netip.Prefix{}, false
	}
	a, ok := netip.AddrFromSlice(n.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := n.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones), true
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// EnsureBridge creates the bridge if missing (with mac, when given, so its
// address never changes as ports with lower MACs join — a bridge otherwise
// takes the lowest port MAC and the host's ARP cache goes stale), and sets
// it up. It reports whether it created the bridge. An existing link of
// another type with that name is an error: labctl does not replace it.
func EnsureBridge(h *netlink.Handle, name string, mac net.HardwareAddr) (created bool, err error) {
	l, err := h.LinkByName(name)
	switch {
	case err == nil:
		if l.Type() != "bridge" {
			return false, fmt.Errorf("link %s exists and is a %s, not a bridge", name, l.Type())
		}
	case IsNotFound(err):
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name, HardwareAddr: mac}}
		if err := h.LinkAdd(br); err != nil && !errors.Is(err, unix.EEXIST) {
			return false, fmt.Errorf("creating bridge %s: %w", name, err)
		}
		created = true
		if l, err = h.LinkByName(name); err != nil {
			return created, fmt.Errorf("bridge %s after creating it: %w", name, err)
		}
	default:
		return false, fmt.Errorf("looking up %s: %w", name, err)
	}
	if mac != nil && l.Attrs().HardwareAddr.String() != mac.String() {
		// A bridge labctl did not create: the caller journaled its MAC and
		// admin state first (see provision's bridge step).
		if err := h.LinkSetHardwareAddr(l, mac); err != nil {
			return created, fmt.Errorf("setting %s address %s: %w", name, mac, err)
		}
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		if err := h.LinkSetUp(l); err != nil {
			return created, fmt.Errorf("setting %s up: %w", name, err)
		}
	}
	return created, nil
}

// RemoveLink deletes a link; a link that does not exist is success.
func RemoveLink(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up %s: %w", name, err)
	}
	if err := h.LinkDel(l); err != nil && !IsNotFound(err) {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	return nil
}

// RemoveLinkDetached deletes a link and returns as soon as the kernel has
// taken it out of the namespace, without waiting out the memory's release.
// The kernel answers RTM_DELLINK only after netdev_run_todo()'s
// rcu_barrier() (net/core/dev.c), a grace period after the link left:
// ~33 ms for a bridge on a 2-core machine (BenchmarkBridgeDelete), most of
// a teardown. unregister_netdevice_many() has by then, under RTNL,
// released the ports, unlisted the link (its name is free, no lookup
// finds it) and sent RTM_DELLINK to listeners; what remains is freeing,
// as after `ip netns delete`, which returns before the kernel tears the
// namespace down. So the delete is sent by an ip of its own (del, started
// ahead, or a new `ip link delete`, in the calling thread's namespace: the
// thread must be locked to it) that is not waited for; RemoveLinkDetached
// returns when the link's index is no longer listed, so a new link of the
// same name is not mistaken for it. Without ip, when ip fails, or when the
// link is still listed after wait, it deletes the link itself and waits
// like RemoveLink. A link that does not exist is success.
//
// "Gone" is RTM_GETLINK's answer, which waits for RTNL: the kernel has
// then run the whole unregister (notifiers, the link's own uninit, the
// RTM_DELLINK notification) and only freeing is left. A bridge still
// costs ~11–20 ms to get there: its uninit, br_multicast_dev_del(), ends
// in an rcu_barrier() under RTNL (net/bridge/br_multicast.c); lookups
// under RCU lose the link earlier, but the kernel is not done then, so
// they are not asked.
func RemoveLinkDetached(h *netlink.Handle, name string, wait time.Duration, del *LinkDeleter) error {
	l, err := h.LinkByName(name)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up %s: %w", name, err)
	}
	index := l.Attrs().Index
	gone := func() bool {
		_, err := h.LinkByIndex(index)
		return IsNotFound(err)
	}
	exited, ok := del.delete(name)
	if !ok {
		if del, err = StartLinkDeleter(); err == nil {
			exited, ok = del.delete(name)
		}
	}
	if ok {
		tick := time.NewTicker(250 * time.Microsecond)
		defer tick.Stop()
		deadline := time.After(wait)
	poll:
		for !gone() {
			select {
			case err := <-exited:
				if err != nil || !gone() {
					break poll // ip failed or deleted another link: delete it here
				}
				return nil
			case <-deadline:
				break poll
			case <-tick.C:
			}
		}
		if gone() {
			return nil
		}
	}
	if err := h.LinkDel(l); err != nil && !IsNotFound(err) {
		return fmt.Errorf("deleting %s: %w", name, err)
	}
	return nil
}

// LinkDeleter is an `ip -batch -` started ahead of a RemoveLinkDetached,
// waiting on its standard input for the one delete it will run, so that
// the exec (2–7 ms on a 2-core machine) is not on the delete's way.
type LinkDeleter struct {
	stdin  io.WriteCloser
	exited chan error
	used   atomic.Bool
}

// StartLinkDeleter starts an ip in the calling thread's namespace (the
// thread must be locked to it). It runs in a process group of its own: a
// ^C at the terminal after labctl returned is not meant for it. Close an
// unused one.
func StartLinkDeleter() (*LinkDeleter, error) {
	cmd := exec.Command("ip", "-batch", "-")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &LinkDeleter{stdin: stdin, exited: make(chan error, 1)}
	go func() { d.exited <- cmd.Wait() }()
	return d, nil
}

// delete hands the delete of name to the waiting ip and ends its batch;
// false when there is no deleter, it was used, or name could not be one
// batch word (the kernel's names have no space; labctl's are checked).
func (d *LinkDeleter) delete(name string) (<-chan error, bool) {
	if d == nil || strings.ContainsAny(name, " \t\n\"'\\") || !d.used.CompareAndSwap(false, true) {
		return nil, false
	}
	_, err := io.WriteString(d.stdin, "link delete dev "+name+"\n")
	d.stdin.Close()
	if err != nil {
		return nil, false
	}
	return d.exited, true
}

// Close lets an unused deleter's ip exit (an empty batch).
func (d *LinkDeleter) Close() {
	if d != nil && d.used.CompareAndSwap(false, true) {
		d.stdin.Close()
	}
}

// SetMaster makes port a port of bridge; bridge "" releases it.
func SetMaster(h *netlink.Handle, port, bridge string) error {
	l, err := h.LinkByName(port)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", port, err)
	}
	if bridge == "" {
		if err := h.LinkSetNoMaster(l); err != nil {
			return fmt.Errorf("releasing %s from its bridge: %w", port, err)
		}
		return nil
	}
	br, err := h.LinkByName(bridge)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", bridge, err)
	}
	if err := h.LinkSetMasterByIndex(l, br.Attrs().Index); err != nil {
		return fmt.Errorf("adding %s to %s: %w", port, bridge, err)
	}
	return nil
}

// SetUp sets a link administratively up or down.
func SetUp(h *netlink.Handle, name string, up bool) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", name, err)
	}
	if up {
		err = h.LinkSetUp(l)
	} else {
		err = h.LinkSetDown(l)
	}
	if err != nil {
		return fmt.Errorf("setting %s up=%v: %w", name, up, err)
	}
	return nil
}

// SetPromisc sets or clears the IFF_PROMISC flag. A bridge port is already
// promiscuous by the bridge's own counter; the flag is what the user asked
// for and what survives the port leaving the bridge.
func SetPromisc(h *netlink.Handle, name string, on bool) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", name, err)
	}
	if on {
		err = h.SetPromiscOn(l)
	} else {
		err = h.SetPromiscOff(l)
	}
	if err != nil {
		return fmt.Errorf("setting %s promisc=%v: %w", name, on, err)
	}
	return nil
}

// AddAddr adds an IPv4 address; one that is already there is success.
func AddAddr(h *netlink.Handle, name string, p netip.Prefix) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", name, err)
	}
	if err := h.AddrAdd(l, &netlink.Addr{IPNet: ipNet(p)}); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding %s to %s: %w", p, name, err)
	}
	return nil
}

// DelAddr removes an address; a missing address or link is success.
func DelAddr(h *netlink.Handle, name string, p netip.Prefix) error {
	l, err := h.LinkByName(name)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up %s: %w", name, err)
	}
	err = h.AddrDel(l, &netlink.Addr{IPNet: ipNet(p)})
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing %s from %s: %w", p, name, err)
	}
	return nil
}

// Route is an IPv4 route through one link, as labctl moves and restores
// it: what `ip route add` would need to put it back exactly.
type Route struct {
	Dst    netip.Prefix `json:"dst"`          // 0.0.0.0/0 for the default route
	Gw     netip.Addr   `json:"gw,omitzero"`  // none for a link-scope route
	Src    netip.Addr   `json:"src,omitzero"` // preferred source, if set
	Metric int          `json:"metric,omitempty"`
	Table  int          `json:"table"`
	Scope  uint8        `json:"scope"`
	Proto  int          `json:"proto"`
}

// Key is the route's stable text form (for the journal).
func (r Route) Key() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// ParseRoute reads a Key.
func ParseRoute(s string) (Route, error) {
	var r Route
	if err := json.Unmarshal([]byte(s), &r); err != nil {
		return Route{}, fmt.Errorf("route %q: %w", s, err)
	}
	if !r.Dst.IsValid() {
		return Route{}, fmt.Errorf("route %q: no destination", s)
	}
	return r, nil
}

func (r Route) String() string {
	s := r.Dst.String()
	if r.Dst.Bits() == 0 {
		s = "default"
	}
	if r.Gw.IsValid() {
		s += " via " + r.Gw.String()
	}
	if r.Src.IsValid() {
		s += " src " + r.Src.String()
	}
	if r.Metric != 0 {
		s += fmt.Sprintf(" metric %d", r.Metric)
	}
	if r.Table != unix.RT_TABLE_MAIN {
		s += fmt.Sprintf(" table %d", r.Table)
	}
	return s
}

// Routes lists the IPv4 routes through link that an address change would
// take with it: every table but local, every protocol but kernel (the
// kernel's own subnet routes come and go with the addresses).
// Multipath routes are not listed (they name no single link).
func Routes(h *netlink.Handle, link string) ([]Route, error) {
	l, err := h.LinkByName(link)
	if err != nil {
		return nil, fmt.Errorf("looking up %s: %w", link, err)
	}
	rs, err := retry(func() ([]netlink.Route, error) {
		return h.RouteListFiltered(netlink.FAMILY_V4,
			&netlink.Route{LinkIndex: l.Attrs().Index, Table: unix.RT_TABLE_UNSPEC},
			netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	})
	if err != nil {
		return nil, fmt.Errorf("listing routes of %s: %w", link, err)
	}
	var out []Route
	for _, r := range rs {
		if r.Table == unix.RT_TABLE_LOCAL || r.Protocol == unix.RTPROT_KERNEL || r.Type != unix.RTN_UNICAST {
			continue
		}
		x := Route{Metric: r.Priority, Table: r.Table, Scope: uint8(r.Scope), Proto: int(r.Protocol)}
		x.Dst = netip.PrefixFrom(netip.IPv4Unspecified(), 0)
		if p, ok := prefixOf(r.Dst); ok {
			x.Dst = p
		}
		if a, ok := netip.AddrFromSlice(r.Gw); ok {
			x.Gw = a.Unmap()
		}
		if a, ok := netip.AddrFromSlice(r.Src); ok {
			x.Src = a.Unmap()
		}
		out = append(out, x)
	}
	return out, nil
}

func (r Route) netlink(index int) *netlink.Route {
	nr := &netlink.Route{
		LinkIndex: index, Dst: ipNet(r.Dst), Priority: r.Metric, Table: r.Table,
		Scope: netlink.Scope(r.Scope), Protocol: netlink.RouteProtocol(r.Proto),
	}
	if r.Gw.IsValid() {
		nr.Gw = r.Gw.AsSlice()
	}
	if r.Src.IsValid() {
		nr.Src = r.Src.AsSlice()
	}
	return nr
}

// AddRoute adds r through link; a route already there is success.
func AddRoute(h *netlink.Handle, link string, r Route) error {
	l, err := h.LinkByName(link)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", link, err)
	}
	if err := h.RouteAdd(r.netlink(l.Attrs().Index)); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding route %s dev %s: %w", r, link, err)
	}
	return nil
}

// DelRoute removes r through link; a missing route or link is success.
func DelRoute(h *netlink.Handle, link string, r Route) error {
	l, err := h.LinkByName(link)
	if IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("looking up %s: %w", link, err)
	}
	if err := h.RouteDel(r.netlink(l.Attrs().Index)); err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing route %s dev %s: %w", r, link, err)
	}
	return nil
}

// SetMAC sets a link's hardware address.
func SetMAC(h *netlink.Handle, name string, mac net.HardwareAddr) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("looking up %s: %w", name, err)
	}
	if err := h.LinkSetHardwareAddr(l, mac); err != nil {
		return fmt.Errorf("setting %s address %s: %w", name, mac, err)
	}
	return nil
}
