package provision

import (
	"fmt"
	"net"
	"net/netip"
)

// Prefix and Addr are the spec's addresses: parsed once, when the spec is
// read (YAML and JSON both decode through UnmarshalText), and handed on
// typed, so nothing downstream parses them again (issue 11). The text is
// kept as written: a value that does not parse is not a decode error but
// a Validate error that names its field and what was expected, and a
// recorded spec reads back unchanged. yaml.v3 decodes a scalar through
// encoding.TextUnmarshaler and encodes through encoding.TextMarshaler
// (go.yaml.in/yaml/v3 v3.0.6, decode.go scalar(), encode.go marshal()).

// Prefix is an address with its prefix length ("192.168.77.2/24").
type Prefix struct {
	text string
	p    netip.Prefix // invalid when text is not one
}

// PrefixOf reads s; an invalid s gives a Prefix that Validate refuses.
func PrefixOf(s string) Prefix {
	p, _ := netip.ParsePrefix(s) // the zero Prefix on error
	return Prefix{text: s, p: p}
}

// Prefix is the parsed value (invalid when the text was not a prefix).
func (p Prefix) Prefix() netip.Prefix { return p.p }

// String is the text as written.
func (p Prefix) String() string { return p.text }

func (p Prefix) MarshalText() ([]byte, error) { return []byte(p.text), nil }

func (p *Prefix) UnmarshalText(b []byte) error {
	*p = PrefixOf(string(b))
	return nil
}

// Addr is an address without a prefix length ("192.168.77.3").
type Addr struct {
	text string
	a    netip.Addr // invalid when text is not one
}

// AddrOf reads s; an invalid s gives an Addr that Validate refuses.
func AddrOf(s string) Addr {
	a, _ := netip.ParseAddr(s) // the zero Addr on error
	return Addr{text: s, a: a}
}

// Addr is the parsed value (invalid when the text was not an address).
func (a Addr) Addr() netip.Addr { return a.a }

// String is the text as written.
func (a Addr) String() string { return a.text }

func (a Addr) MarshalText() ([]byte, error) { return []byte(a.text), nil }

func (a *Addr) UnmarshalText(b []byte) error {
	*a = AddrOf(string(b))
	return nil
}

// MAC is a guest's Ethernet address. Unlike net.HardwareAddr it is
// comparable (a GuestRecord is compared whole to see whether a guest's
// config changed) and it reads and writes itself as text, so guest.json
// keeps "00:16:3e:…".
type MAC [6]byte

// ParseMAC reads a 6-byte MAC in any form net.ParseMAC accepts.
func ParseMAC(s string) (MAC, error) {
	hw, err := net.ParseMAC(s)
	if err != nil {
		return MAC{}, err
	}
	if len(hw) != 6 {
		return MAC{}, fmt.Errorf("MAC %q: want 6 bytes, have %d", s, len(hw))
	}
	return MAC(hw), nil
}

// HardwareAddr is m for netlink and the runtimes.
func (m MAC) HardwareAddr() net.HardwareAddr { return net.HardwareAddr(m[:]) }

// IsZero reports an unset MAC (a record from before it was written).
func (m MAC) IsZero() bool { return m == MAC{} }

func (m MAC) String() string {
	if m.IsZero() {
		return ""
	}
	return m.HardwareAddr().String()
}

func (m MAC) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

func (m *MAC) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*m = MAC{}
		return nil
	}
	v, err := ParseMAC(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}
