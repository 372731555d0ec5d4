package netsetup

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Lease is one line of a dnsmasq lease file.
type Lease struct {
	Expiry   time.Time        // zero: infinite (dnsmasq writes 0)
	MAC      net.HardwareAddr // nil for DHCPv6 leases (the field is an IAID)
	IAID     uint32           // DHCPv6 only
	IP       netip.Addr
	Hostname string // "" when dnsmasq wrote "*"
	ClientID string // "" when dnsmasq wrote "*"
}

// Expired reports whether the lease ended before now.
func (l Lease) Expired(now time.Time) bool {
	return !l.Expiry.IsZero() && !l.Expiry.After(now)
}

// ParseLeases parses dnsmasq's lease file: "<expiry> <mac> <ip> <host>
// <client-id>" per IPv4 lease, a "duid <server-duid>" line before the
// DHCPv6 leases, whose second field is the IAID. A malformed line is an
// error naming the line: a lease file is dnsmasq's, and guessing at a bad
// one could hand a guest's address to another.
func ParseLeases(b []byte) ([]Lease, error) {
	var out []Lease
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if f[0] == "duid" {
			if len(f) != 2 {
				return nil, fmt.Errorf("lease file line %d: expected \"duid <hex>\", got %q", n, line)
			}
			continue
		}
		if len(f) != 5 {
			return nil, fmt.Errorf("lease file line %d: expected 5 fields (expiry mac ip hostname client-id), got %d", n, len(f))
		}
		exp, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || exp < 0 {
			return nil, fmt.Errorf("lease file line %d: expiry %q: expected seconds since the epoch", n, f[0])
		}
		var l Lease
		if exp != 0 {
			l.Expiry = time.Unix(exp, 0)
		}
		ip, err := netip.ParseAddr(f[2])
		if err != nil || ip.Zone() != "" {
			return nil, fmt.Errorf("lease file line %d: address %q: expected an IP address", n, f[2])
		}
		l.IP = ip
		if ip.Is4() {
			mac, err := net.ParseMAC(f[1])
			if err != nil {
				return nil, fmt.Errorf("lease file line %d: %q: expected a MAC address", n, f[1])
			}
			l.MAC = mac
		} else {
			iaid, err := strconv.ParseUint(f[1], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("lease file line %d: %q: expected a DHCPv6 IAID", n, f[1])
			}
			l.IAID = uint32(iaid)
		}
		if f[3] != "*" {
			l.Hostname = f[3]
		}
		if f[4] != "*" {
			l.ClientID = f[4]
		}
		out = append(out, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("lease file: %w", err)
	}
	return out, nil
}

// LeaseFor returns the newest unexpired IPv4 lease for mac.
func LeaseFor(ls []Lease, mac net.HardwareAddr, now time.Time) (Lease, bool) {
	var best Lease
	found := false
	for _, l := range ls {
		if l.MAC == nil || !bytes.Equal(l.MAC, mac) || l.Expired(now) {
			continue
		}
		if !found || l.Expiry.IsZero() || (!best.Expiry.IsZero() && l.Expiry.After(best.Expiry)) {
			best, found = l, true
		}
	}
	return best, found
}
