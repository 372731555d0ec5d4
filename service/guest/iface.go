package guest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// iface is the guest's interface, driven through a netlink handle in the
// guest's own namespace.
type iface struct {
	nl   *netlink.Handle
	name string
	con  *consoleWriter
	log  *slog.Logger
	mac  net.HardwareAddr
	cur  netip.Prefix // address currently applied by us
}

// up waits for the link, sets lo and the link up and waits for the link to
// be operational: packets sent before that are dropped, and the first
// DHCPDISCOVER would be lost to a retry timeout.
func (f *iface) up(ctx context.Context, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	var link netlink.Link
	for {
		l, err := f.nl.LinkByName(f.name)
		if err == nil {
			link = l
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("interface %s: %w", f.name, err)
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	if lo, err := f.nl.LinkByName("lo"); err == nil {
		if err := f.nl.LinkSetUp(lo); err != nil {
			return fmt.Errorf("interface lo: up: %w", err)
		}
	}
	if err := f.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("interface %s: up: %w", f.name, err)
	}
	a := link.Attrs()
	f.mac = a.HardwareAddr
	f.con.printf("Netif: %s index %d mtu %d", f.name, a.Index, a.MTU)
	f.con.printf("MAC: %s", a.HardwareAddr)
	for {
		l, err := f.nl.LinkByName(f.name)
		if err != nil {
			return fmt.Errorf("interface %s: %w", f.name, err)
		}
		if st := l.Attrs().OperState; st == netlink.OperUp || st == netlink.OperUnknown {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("interface %s: not operational after %v (state %s; is the peer up?)", f.name, wait, l.Attrs().OperState)
		}
		if err := sleep(ctx, 5*time.Millisecond); err != nil {
			return err
		}
	}
}

// apply sets addr on the interface (replacing an address we set before)
// and, when gw is valid, the default route through it.
func (f *iface) apply(addr netip.Prefix, gw netip.Addr) error {
	link, err := f.nl.LinkByName(f.name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", f.name, err)
	}
	if f.cur.IsValid() && f.cur != addr {
		if err := f.removeAddr(link, f.cur); err != nil {
			return err
		}
	}
	ipn := prefixToIPNet(addr)
	nla := &netlink.Addr{IPNet: ipn, Broadcast: broadcast(ipn)}
	if err := f.nl.AddrReplace(link, nla); err != nil {
		return fmt.Errorf("interface %s: address %s: %w", f.name, addr, err)
	}
	f.cur = addr
	if gw.IsValid() {
		r := &netlink.Route{LinkIndex: link.Attrs().Index, Gw: net.IP(gw.AsSlice()), Dst: nil, Family: unix.AF_INET}
		if err := f.nl.RouteReplace(r); err != nil {
			return fmt.Errorf("interface %s: default route via %s: %w", f.name, gw, err)
		}
	}
	return nil
}

// release removes the address we set (an expired lease).
func (f *iface) release() error {
	if !f.cur.IsValid() {
		return nil
	}
	link, err := f.nl.LinkByName(f.name)
	if err != nil {
		return fmt.Errorf("interface %s: %w", f.name, err)
	}
	err = f.removeAddr(link, f.cur)
	f.cur = netip.Prefix{}
	return err
}

func (f *iface) removeAddr(link netlink.Link, p netip.Prefix) error {
	err := f.nl.AddrDel(link, &netlink.Addr{IPNet: prefixToIPNet(p)})
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
		return fmt.Errorf("interface %s: remove %s: %w", f.name, p, err)
	}
	return nil
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func broadcast(n *net.IPNet) net.IP {
	ip := n.IP.To4()
	if ip == nil {
		return nil
	}
	b := make(net.IP, 4)
	for i := range b {
		b[i] = ip[i] | ^n.Mask[i]
	}
	return b
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
