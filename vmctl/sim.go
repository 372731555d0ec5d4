package vmctl

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/labctl/labctl/internal/procs"
)

// The simulated lab: three namespaces standing in for the host, the dom0
// VM and VirtualBox's NAT side. Every address lives only inside them.
const (
	SimHostIf = "vboxnet4" // the host's host-only interface, as in the article
	SimWANIf  = "wan"      // dom0's NAT-side interface
	SimWANEnd = "eth0"     // its peer, in <lab>-wan
)

// The WAN uses the documentation range (RFC 5737 TEST-NET-3): it exists
// only between <lab>-dom0 and <lab>-wan and routes nowhere.
var (
	SimWANDom0 = netip.MustParsePrefix("203.0.113.2/24")
	SimWANGw   = netip.MustParsePrefix("203.0.113.1/24")
)

// SimConfig is the simulated lab's shape, from the spec.
type SimConfig struct {
	Lab      string
	Uplink   string       // dom0's host-only interface (eth1)
	HostAddr netip.Prefix // vboxnet4's address (192.168.77.1/24)
	Dom0Addr netip.Prefix // eth1's address as Vagrant leaves it (192.168.77.2/24)
}

// SimNames returns the lab's namespace names.
func SimNames(lab string) (host, dom0, wan string) {
	return lab + "-host", lab + "-dom0", lab + "-wan"
}

// GuestNetns is the namespace of guest number index of the lab.
func GuestNetns(lab string, index int) string { return fmt.Sprintf("%s-g%d", lab, index) }

// SimMAC derives a stable locally-administered-looking MAC in VirtualBox's
// OUI (08:00:27) for one of the sim's interfaces.
func SimMAC(lab, ifname string) net.HardwareAddr {
	h := sha256.Sum256([]byte(lab + "/" + ifname))
	return net.HardwareAddr{0x08, 0x00, 0x27, h[0], h[1], h[2]}
}

// SimUp creates the lab's namespaces and links if missing. It is
// idempotent: existing namespaces and links are left as they are, so a
// provisioned dom0 (eth1 in br0, its address on br0) stays provisioned.
func SimUp(ctx context.Context, c SimConfig, log *slog.Logger) error {
	host, dom0, wan := SimNames(c.Lab)
	for _, ns := range []string{host, dom0, wan} {
		if err := ensureNetns(ctx, ns); err != nil {
			return err
		}
	}
	hh, err := HandleAt(host)
	if err != nil {
		return err
	}
	defer hh.Close()
	dh, err := HandleAt(dom0)
	if err != nil {
		return err
	}
	defer dh.Close()
	wh, err := HandleAt(wan)
	if err != nil {
		return err
	}
	defer wh.Close()
	for _, h := range []*netlink.Handle{hh, dh, wh} {
		if err := setUp(h, "lo"); err != nil {
			return err
		}
	}
	// host-only network: vboxnet4 (host) ═ eth1 (dom0)
	if _, err := hh.LinkByName(SimHostIf); err != nil {
		log.Info("creating host-only link", "host", host+"/"+SimHostIf, "dom0", dom0+"/"+c.Uplink)
		if err := vethPair(hh, SimHostIf, SimMAC(c.Lab, SimHostIf), dh, dom0, c.Uplink, SimMAC(c.Lab, c.Uplink)); err != nil {
			return err
		}
		if err := addrUp(hh, SimHostIf, c.HostAddr); err != nil {
			return err
		}
		if err := addrUp(dh, c.Uplink, c.Dom0Addr); err != nil {
			return err
		}
	}
	// NAT side: wan (dom0) ═ eth0 (<lab>-wan), dom0's default route.
	if _, err := dh.LinkByName(SimWANIf); err != nil {
		log.Info("creating WAN link", "dom0", dom0+"/"+SimWANIf, "wan", wan+"/"+SimWANEnd)
		if err := vethPair(dh, SimWANIf, SimMAC(c.Lab, SimWANIf), wh, wan, SimWANEnd, SimMAC(c.Lab, "wan-"+SimWANEnd)); err != nil {
			return err
		}
		if err := addrUp(dh, SimWANIf, SimWANDom0); err != nil {
			return err
		}
		if err := addrUp(wh, SimWANEnd, SimWANGw); err != nil {
			return err
		}
		gw := &netlink.Route{Gw: SimWANGw.Addr().AsSlice()}
		if err := dh.RouteAdd(gw); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("default route via %s in %s: %w", SimWANGw.Addr(), dom0, err)
		}
	}
	return nil
}

func ensureNetns(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return addNetns(name)
}

func setUp(h *netlink.Handle, name string) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("setting %s up: %w", name, err)
	}
	return nil
}

// vethPair creates name in h's namespace with its peer created directly
// in the peer namespace: no link ever appears in labctl's own namespace.
func vethPair(h *netlink.Handle, name string, mac net.HardwareAddr, peerH *netlink.Handle, peerNS, peer string, peerMAC net.HardwareAddr) error {
	ns, err := nsFD(peerNS)
	if err != nil {
		return err
	}
	defer unix.Close(ns)
	v := &netlink.Veth{
		LinkAttrs:        netlink.LinkAttrs{Name: name, HardwareAddr: mac},
		PeerName:         peer,
		PeerHardwareAddr: peerMAC,
		PeerNamespace:    netlink.NsFd(ns),
	}
	if err := h.LinkAdd(v); err != nil {
		return fmt.Errorf("creating veth %s ═ %s/%s: %w", name, peerNS, peer, err)
	}
	return nil
}

func nsFD(name string) (int, error) {
	fd, err := unix.Open(filepath.Join("/run/netns", name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("network namespace %s: %w", name, err)
	}
	return fd, nil
}

func addrUp(h *netlink.Handle, name string, p netip.Prefix) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("link %s: %w", name, err)
	}
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 32)}}
	if err := h.AddrAdd(l, a); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("adding %s to %s: %w", p, name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("setting %s up: %w", name, err)
	}
	return nil
}

// SimNamespaces lists the lab's existing namespaces: host, dom0, wan and
// guests (<lab>-g<N>).
func SimNamespaces(lab string) ([]string, error) {
	ents, err := os.ReadDir("/run/netns")
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing network namespaces: %w", err)
	}
	guest := regexp.MustCompile("^" + regexp.QuoteMeta(lab) + `-g[0-9]+$`)
	host, dom0, wan := SimNames(lab)
	var out []string
	for _, e := range ents {
		n := e.Name()
		if n == host || n == dom0 || n == wan || guest.MatchString(n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// SimDown stops every process living in the lab's namespaces and deletes
// the namespaces (and with them every link). Missing pieces are success.
func SimDown(ctx context.Context, lab string, log *slog.Logger) error {
	names, err := SimNamespaces(lab)
	if err != nil {
		return err
	}
	var errs []error
	for _, ns := range names {
		if err := KillNetnsProcs(ctx, ns, log); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range names {
		if err := DeleteNetns(ctx, ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// DeleteNetns removes a named namespace; a missing one is success.
func DeleteNetns(ctx context.Context, ns string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return delNetns(ns)
}

// NetnsPids lists the live (non-zombie) processes whose network namespace
// is the named one.
func NetnsPids(ns string) ([]int, error) {
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join("/run/netns", ns), &st); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, nil
		}
		return nil, fmt.Errorf("network namespace %s: %w", ns, err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, e := range ents {
		var pid int
		// Never ourselves: a thread of labctl may sit in the namespace.
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil || pid <= 1 || pid == os.Getpid() {
			continue
		}
		link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
		if err != nil || link != want || !procs.Alive(pid) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids, nil
}

// KillNetnsProcs stops every process in the namespace: SIGTERM, then
// SIGKILL after two seconds.
func KillNetnsProcs(ctx context.Context, ns string, log *slog.Logger) error {
	pids, err := NetnsPids(ns)
	if err != nil || len(pids) == 0 {
		return err
	}
	for _, p := range pids {
		log.Debug("stopping process", "netns", ns, "pid", p)
		syscall.Kill(p, syscall.SIGTERM)
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		left, err := NetnsPids(ns)
		if err != nil || len(left) == 0 {
			return err
		}
		if time.Now().After(deadline) {
			for _, p := range left {
				syscall.Kill(p, syscall.SIGKILL)
			}
			deadline = time.Now().Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopping processes in %s: %w", ns, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}
