package doctor

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
)

// Interface is a host network interface and its addresses.
type Interface struct {
	Name  string
	Up    bool
	Addrs []netip.Prefix
}

// Route is one IPv4 route of the host's main table.
type Route struct {
	Dst     netip.Prefix
	Dev     string
	Gateway netip.Addr // invalid for on-link routes
	Metric  int
}

// NetLister lists the host's interfaces and routes.
type NetLister interface {
	Interfaces(ctx context.Context) ([]Interface, error)
	Routes(ctx context.Context) ([]Route, error)
}

// SystemNet reads this machine's interfaces (net.Interfaces) and IPv4 main
// routing table (/proc/net/route; policy routing is not considered).
type SystemNet struct {
	// ProcNetRoute defaults to /proc/net/route.
	ProcNetRoute string
}

// Interfaces lists the host's interfaces.
func (SystemNet) Interfaces(context.Context) ([]Interface, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return nil, fmt.Errorf("list interfaces: %w", err)
	}
	out := make([]Interface, 0, len(ifs))
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			return nil, fmt.Errorf("addresses of %s: %w", ifc.Name, err)
		}
		i := Interface{Name: ifc.Name, Up: ifc.Flags&net.FlagUp != 0}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ones, _ := ipn.Mask.Size()
			i.Addrs = append(i.Addrs, netip.PrefixFrom(ip.Unmap(), ones))
		}
		out = append(out, i)
	}
	return out, nil
}

// Routes reads /proc/net/route.
func (s SystemNet) Routes(context.Context) ([]Route, error) {
	path := s.ProcNetRoute
	if path == "" {
		path = "/proc/net/route"
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read routes: %w", err)
	}
	rs, err := ParseProcNetRoute(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rs, nil
}

// rtfUp is RTF_UP: the route is usable.
const rtfUp = 0x1

// ParseProcNetRoute parses /proc/net/route. Addresses are 8 hex digits in
// host byte order (little-endian on amd64/arm64, the hosts labctl runs on).
func ParseProcNetRoute(content string) ([]Route, error) {
	var rs []Route
	for i, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || i == 0 && f[0] == "Iface" {
			continue
		}
		if len(f) < 8 {
			return nil, fmt.Errorf("line %d: %d fields, want at least 8", i+1, len(f))
		}
		dst, err := hexAddr(f[1])
		if err != nil {
			return nil, fmt.Errorf("line %d destination: %w", i+1, err)
		}
		gw, err := hexAddr(f[2])
		if err != nil {
			return nil, fmt.Errorf("line %d gateway: %w", i+1, err)
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil {
			return nil, fmt.Errorf("line %d flags %q: %w", i+1, f[3], err)
		}
		metric, err := strconv.Atoi(f[6])
		if err != nil {
			return nil, fmt.Errorf("line %d metric %q: %w", i+1, f[6], err)
		}
		mask, err := hexAddr(f[7])
		if err != nil {
			return nil, fmt.Errorf("line %d mask: %w", i+1, err)
		}
		bits, ok := maskBits(mask)
		if !ok {
			return nil, fmt.Errorf("line %d: non-contiguous mask %s", i+1, mask)
		}
		if flags&rtfUp == 0 {
			continue
		}
		r := Route{Dst: netip.PrefixFrom(dst, bits).Masked(), Dev: f[0], Metric: metric}
		if !gw.IsUnspecified() {
			r.Gateway = gw
		}
		rs = append(rs, r)
	}
	return rs, nil
}

func hexAddr(s string) (netip.Addr, error) {
	if len(s) != 8 {
		return netip.Addr{}, fmt.Errorf("%q is not 8 hex digits", s)
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q: %w", s, err)
	}
	var a [4]byte
	binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(b))
	return netip.AddrFrom4(a), nil
}

func maskBits(m netip.Addr) (int, bool) {
	a := m.As4()
	v := binary.BigEndian.Uint32(a[:])
	n := 0
	for v&0x80000000 != 0 {
		n++
		v <<= 1
	}
	return n, v == 0
}

// LookupRoute returns the route the kernel would use for a: longest
// prefix, then lowest metric.
func LookupRoute(rs []Route, a netip.Addr) (Route, bool) {
	best, found := Route{}, false
	for _, r := range rs {
		if !r.Dst.Contains(a) {
			continue
		}
		if !found || r.Dst.Bits() > best.Dst.Bits() || r.Dst.Bits() == best.Dst.Bits() && r.Metric < best.Metric {
			best, found = r, true
		}
	}
	return best, found
}
