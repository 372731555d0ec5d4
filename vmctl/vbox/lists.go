package vbox

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// record is one block of a `VBoxManage list ...` output.
type record map[string]string

// parseRecords splits "Key:   value" lines into records, a new record
// starting at each startKey line. Blank lines do not separate records
// (`list hostonlynets` has one inside each record) and indented lines
// (the nested "Global Configuration:" block of 6.1+ `list dhcpservers`)
// belong to no top-level key, so both are skipped. Keys are matched
// case-insensitively: older versions print lowerIPAddress, newer LowerIPAddress.
func parseRecords(out, startKey string) []record {
	var recs []record
	var cur record
	for _, line := range strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n") {
		if strings.TrimSpace(line) == "" || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		if k == strings.ToLower(startKey) {
			cur = record{}
			recs = append(recs, cur)
		}
		if cur == nil {
			continue // lines before the first record
		}
		cur[k] = v
	}
	return recs
}

// HostOnlyIf is one entry of `VBoxManage list hostonlyifs`.
type HostOnlyIf struct {
	Name            string
	GUID            string
	DHCP            bool // the "DHCP:" line: whether the host configures itself by DHCP
	IPv4            netip.Addr
	NetworkMask     netip.Addr
	IPv6            netip.Addr
	IPv6Prefix      int
	HardwareAddress string
	MediumType      string
	Wireless        string
	Status          string // "Up", "Down"
	VBoxNetworkName string // "HostInterfaceNetworking-vboxnet0"
}

// Prefix is the interface's IPv4 address with its netmask as a prefix
// (192.168.77.1/24); invalid when the address or mask is missing or bad.
func (h HostOnlyIf) Prefix() netip.Prefix { return maskPrefix(h.IPv4, h.NetworkMask) }

// ParseHostOnlyIfs parses `VBoxManage list hostonlyifs`.
func ParseHostOnlyIfs(out string) ([]HostOnlyIf, error) {
	var ifs []HostOnlyIf
	for _, r := range parseRecords(out, "Name") {
		h := HostOnlyIf{
			Name:            r["name"],
			GUID:            r["guid"],
			DHCP:            strings.EqualFold(r["dhcp"], "Enabled"),
			HardwareAddress: r["hardwareaddress"],
			MediumType:      r["mediumtype"],
			Wireless:        r["wireless"],
			Status:          r["status"],
			VBoxNetworkName: r["vboxnetworkname"],
		}
		var err error
		if h.IPv4, err = optAddr(r["ipaddress"]); err != nil {
			return nil, fmt.Errorf("list hostonlyifs: interface %q IPAddress: %w", h.Name, err)
		}
		if h.NetworkMask, err = optAddr(r["networkmask"]); err != nil {
			return nil, fmt.Errorf("list hostonlyifs: interface %q NetworkMask: %w", h.Name, err)
		}
		if h.IPv6, err = optAddr(r["ipv6address"]); err != nil {
			return nil, fmt.Errorf("list hostonlyifs: interface %q IPV6Address: %w", h.Name, err)
		}
		if s := r["ipv6networkmaskprefixlength"]; s != "" {
			if h.IPv6Prefix, err = strconv.Atoi(s); err != nil || h.IPv6Prefix < 0 || h.IPv6Prefix > 128 {
				return nil, fmt.Errorf("list hostonlyifs: interface %q IPV6NetworkMaskPrefixLength %q: bad length", h.Name, s)
			}
		}
		ifs = append(ifs, h)
	}
	return ifs, nil
}

// HostOnlyNet is one entry of `VBoxManage list hostonlynets` (VirtualBox 7,
// where host-only networks replace host-only interfaces on macOS).
type HostOnlyNet struct {
	Name            string
	GUID            string
	Enabled         bool
	NetworkMask     netip.Addr
	LowerIP         netip.Addr
	UpperIP         netip.Addr
	VBoxNetworkName string // "hostonly-vagrantnet-vbox1"
}

// Prefix is the network's subnet (LowerIP masked by NetworkMask).
func (h HostOnlyNet) Prefix() netip.Prefix { return maskPrefix(h.LowerIP, h.NetworkMask).Masked() }

// ParseHostOnlyNets parses `VBoxManage list hostonlynets`.
func ParseHostOnlyNets(out string) ([]HostOnlyNet, error) {
	var nets []HostOnlyNet
	for _, r := range parseRecords(out, "Name") {
		n := HostOnlyNet{
			Name:            r["name"],
			GUID:            r["guid"],
			Enabled:         strings.EqualFold(r["state"], "Enabled"),
			VBoxNetworkName: r["vboxnetworkname"],
		}
		var err error
		if n.NetworkMask, err = optAddr(r["networkmask"]); err != nil {
			return nil, fmt.Errorf("list hostonlynets: network %q NetworkMask: %w", n.Name, err)
		}
		if n.LowerIP, err = optAddr(r["lowerip"]); err != nil {
			return nil, fmt.Errorf("list hostonlynets: network %q LowerIP: %w", n.Name, err)
		}
		if n.UpperIP, err = optAddr(r["upperip"]); err != nil {
			return nil, fmt.Errorf("list hostonlynets: network %q UpperIP: %w", n.Name, err)
		}
		nets = append(nets, n)
	}
	return nets, nil
}

// DHCPServer is one entry of `VBoxManage list dhcpservers`, legacy (<= 6.0:
// "IP:", "lowerIPAddress:") or 6.1+ ("Dhcpd IP:", "LowerIPAddress:", nested
// "Global Configuration:" block).
type DHCPServer struct {
	NetworkName string // "HostInterfaceNetworking-vboxnet0"
	IP          netip.Addr
	NetworkMask netip.Addr
	LowerIP     netip.Addr
	UpperIP     netip.Addr
	Enabled     bool
}

// Prefix is the subnet the server serves (its IP masked by NetworkMask).
func (d DHCPServer) Prefix() netip.Prefix { return maskPrefix(d.IP, d.NetworkMask).Masked() }

// Interface is the host-only interface name the server is bound to
// ("vboxnet0"), or "" when the network is not a host-only interface's.
func (d DHCPServer) Interface() string {
	name, ok := strings.CutPrefix(d.NetworkName, HostOnlyNetworkPrefix)
	if !ok {
		return ""
	}
	return name
}

// HostOnlyNetworkPrefix prefixes a host-only interface's internal network
// name: the DHCP server of vboxnet4 is "HostInterfaceNetworking-vboxnet4".
const HostOnlyNetworkPrefix = "HostInterfaceNetworking-"

// ParseDHCPServers parses `VBoxManage list dhcpservers`.
func ParseDHCPServers(out string) ([]DHCPServer, error) {
	var srvs []DHCPServer
	for _, r := range parseRecords(out, "NetworkName") {
		d := DHCPServer{NetworkName: r["networkname"], Enabled: strings.EqualFold(r["enabled"], "Yes")}
		ip := r["dhcpd ip"]
		if ip == "" {
			ip = r["ip"]
		}
		var err error
		if d.IP, err = optAddr(ip); err != nil {
			return nil, fmt.Errorf("list dhcpservers: %q IP: %w", d.NetworkName, err)
		}
		if d.NetworkMask, err = optAddr(r["networkmask"]); err != nil {
			return nil, fmt.Errorf("list dhcpservers: %q NetworkMask: %w", d.NetworkName, err)
		}
		if d.LowerIP, err = optAddr(r["loweripaddress"]); err != nil {
			return nil, fmt.Errorf("list dhcpservers: %q LowerIPAddress: %w", d.NetworkName, err)
		}
		if d.UpperIP, err = optAddr(r["upperipaddress"]); err != nil {
			return nil, fmt.Errorf("list dhcpservers: %q UpperIPAddress: %w", d.NetworkName, err)
		}
		srvs = append(srvs, d)
	}
	return srvs, nil
}

// optAddr parses an address that may be printed empty.
func optAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, err
	}
	return a.Unmap(), nil
}

// maskPrefix turns an IPv4 address and dotted netmask into a prefix; the
// result is invalid unless the mask is a contiguous IPv4 mask.
func maskPrefix(addr, mask netip.Addr) netip.Prefix {
	if !addr.Is4() || !mask.Is4() {
		return netip.Prefix{}
	}
	m := mask.As4()
	bits := 0
	v := uint32(m[0])<<24 | uint32(m[1])<<16 | uint32(m[2])<<8 | uint32(m[3])
	for v&0x80000000 != 0 {
		bits++
		v <<= 1
	}
	if v != 0 {
		return netip.Prefix{} // non-contiguous mask
	}
	return netip.PrefixFrom(addr, bits)
}
