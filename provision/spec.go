// Package provision holds the lab spec and the converge engine: an ordered
// list of named steps, each observe → diff → apply → verify, with a journal
// that lets teardown restore exactly what was there before.
package provision

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

//go:embed defaults.yaml
var defaultSpecYAML []byte

// DefaultSpecYAML is the commented default spec `labctl init` writes.
func DefaultSpecYAML() []byte { return bytes.Clone(defaultSpecYAML) }

// Spec is a lab: what dom0's network must look like.
type Spec struct {
	Lab     string  `yaml:"lab" json:"lab"`
	Network Network `yaml:"network" json:"network"`
	Guests  Guests  `yaml:"guests" json:"guests"`
	Users   Users   `yaml:"users" json:"users"`
	Xen     Xen     `yaml:"xen" json:"xen"`
}

// Xen configures the xen runtime (guests.runtime: xen).
type Xen struct {
	// XL is the xl binary.
	XL string `yaml:"xl" json:"xl"`
	// OpamRoot and OpamSwitch name the opam installation that has mirage
	// (the Vagrant VM's: /opt/labctl/opam, switch mirage). labctl then runs
	// mirage, make and ocaml through `opam exec --root R --switch S
	// --set-root --set-switch --` (see Xen.ToolPrefix).
	OpamRoot   string `yaml:"opam_root" json:"opam_root"`
	OpamSwitch string `yaml:"opam_switch" json:"opam_switch"`
	// Prefix goes before mirage, make and ocaml when neither opam_root nor
	// the agent's PATH finds them: the escape hatch for other set-ups.
	Prefix []string `yaml:"prefix" json:"prefix"`
	// Kernel, when set, is a unikernel built elsewhere: no build in dom0.
	Kernel string `yaml:"kernel" json:"kernel"`
	// Extra are the guest's boot arguments (xl extra=).
	Extra string `yaml:"extra" json:"extra"`
}

// Guests are the authentication service's instances.
type Guests struct {
	Name     string `yaml:"name" json:"name"`         // guests are <name>-1 … <name>-N
	Replicas int    `yaml:"replicas" json:"replicas"` // N
	Runtime  string `yaml:"runtime" json:"runtime"`   // process (sim) or xen
	Port     int    `yaml:"port" json:"port"`
	Memory   int    `yaml:"memory" json:"memory"` // MiB, xen
}

// Users configures the users image.
type Users struct {
	// Iterations of PBKDF2-SHA256 for passwords added with `labctl users add`.
	Iterations int `yaml:"iterations" json:"iterations"`
}

// Network is dom0's side of the lab.
type Network struct {
	Bridge      string `yaml:"bridge" json:"bridge"`
	Uplink      string `yaml:"uplink" json:"uplink"`
	Address     Prefix `yaml:"address" json:"address"`
	HostAddress Prefix `yaml:"host_address" json:"host_address"`
	Promiscuous bool   `yaml:"promiscuous" json:"promiscuous"`
	NAT         bool   `yaml:"nat" json:"nat"`
	DHCP        DHCP   `yaml:"dhcp" json:"dhcp"`
}

// DHCP is the range dnsmasq serves on the bridge.
type DHCP struct {
	Start Addr     `yaml:"start" json:"start"`
	End   Addr     `yaml:"end" json:"end"`
	Lease Duration `yaml:"lease" json:"lease"`
}

// Duration is a time.Duration written as "1h" in YAML and JSON.
type Duration time.Duration

func (d Duration) String() string { return time.Duration(d).String() }

// UnmarshalYAML parses Go duration syntax ("1h", "90m").
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: expected a duration like 1h or 30m", n.Line)
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration like 1h or 30m", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration in Go syntax.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// MarshalText writes the duration in Go syntax (JSON).
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads Go duration syntax (JSON).
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Default returns the embedded default spec.
func Default() Spec {
	s, err := ParseSpec(defaultSpecYAML, "defaults.yaml")
	if err != nil {
		panic("embedded defaults.yaml is invalid: " + err.Error())
	}
	return s
}

// MaxSpecSize caps a spec file: a real one is a few hundred bytes, and a
// huge file (or a device given by mistake) must not be read into memory.
const MaxSpecSize = 1 << 20

// MaxLease bounds network.dhcp.lease: a year; longer only pins addresses
// of guests long gone (and dnsmasq keeps lease times in 32-bit seconds).
const MaxLease = 365 * 24 * time.Hour

// LoadSpec reads a spec file; keys it leaves out keep their defaults.
func LoadSpec(path string) (Spec, error) {
	f, err := os.Open(path)
	if err != nil {
		return Spec{}, fmt.Errorf("reading spec: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxSpecSize+1))
	if err != nil {
		return Spec{}, fmt.Errorf("reading spec %s: %w", path, err)
	}
	if len(b) > MaxSpecSize {
		return Spec{}, fmt.Errorf("%s: larger than %d bytes; a lab spec is a short YAML file", path, MaxSpecSize)
	}
	return ParseSpec(b, path)
}

// ParseSpec decodes YAML strictly (unknown keys fail) over the defaults
// and validates the result. name is used in error messages.
func ParseSpec(b []byte, name string) (Spec, error) {
	var s Spec
	if name != "defaults.yaml" {
		s = Default()
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil && !errors.Is(err, io.EOF) {
		return Spec{}, fmt.Errorf("%s: %s", name, nameFields(b, cleanYAMLError(err)))
	}
	// A second document is almost always a mistake (a stray "---").
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return Spec{}, fmt.Errorf("%s: expected one YAML document, found more", name)
	}
	if err := s.Validate(); err != nil {
		return Spec{}, fmt.Errorf("%s: %w", name, err)
	}
	return s, nil
}

// cleanYAMLError turns yaml.v3's "field x not found in type provision.Network"
// into words that name the field the user wrote.
func cleanYAMLError(err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.ReplaceAll(msg, "unmarshal errors:\n  ", "")
	re := regexp.MustCompile(`field (\S+) not found in type provision\.(\w+)`)
	return re.ReplaceAllStringFunc(msg, func(m string) string {
		sub := re.FindStringSubmatch(m)
		if near := nearestKey(sub[1], sectionKeys(sub[2])); near != "" {
			return fmt.Sprintf("unknown key %q in %s; did you mean %q?", sub[1], sectionName(sub[2]), near)
		}
		return fmt.Sprintf("unknown key %q in %s (see `labctl init` for the known keys)", sub[1], sectionName(sub[2]))
	})
}

// sectionKeys lists the YAML keys of the spec section named by its Go
// type, read from the struct tags so that it cannot drift from them.
func sectionKeys(goType string) []string {
	types := map[string]reflect.Type{
		"Spec": reflect.TypeFor[Spec](), "Network": reflect.TypeFor[Network](), "DHCP": reflect.TypeFor[DHCP](),
		"Guests": reflect.TypeFor[Guests](), "Users": reflect.TypeFor[Users](), "Xen": reflect.TypeFor[Xen](),
	}
	t, ok := types[goType]
	if !ok {
		return nil
	}
	return tagKeys(t, "yaml")
}

// tagKeys lists the keys the struct type t's fields have under tag
// ("yaml", "json"), leaving out untagged and "-" fields.
func tagKeys(t reflect.Type, tag string) []string {
	var keys []string
	for f := range t.Fields() {
		if k, _, _ := strings.Cut(f.Tag.Get(tag), ","); k != "" && k != "-" {
			keys = append(keys, k)
		}
	}
	return keys
}

// nearestKey is the known key closest to typo, if close enough to be a
// slip (as cobra suggests verbs: Levenshtein distance ≤ 2), else "".
func nearestKey(typo string, keys []string) string {
	best, bestD := "", 3
	for _, k := range keys {
		if d := levenshtein(strings.ToLower(typo), k); d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

func levenshtein(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// nameFields adds the field's path to yaml.v3's type errors, which name
// only a line ("line 3: cannot unmarshal !!seq into string").
func nameFields(b []byte, msg string) string {
	var root yaml.Node
	if yaml.Unmarshal(b, &root) != nil {
		return msg
	}
	re := regexp.MustCompile(`line (\d+): (cannot unmarshal [^\n]*)`)
	return re.ReplaceAllStringFunc(msg, func(m string) string {
		sub := re.FindStringSubmatch(m)
		var line int
		fmt.Sscan(sub[1], &line)
		if f := fieldAt(&root, line, ""); f != "" {
			return fmt.Sprintf("line %d: %s: %s", line, f, sub[2])
		}
		return m
	})
}

// fieldAt is the dotted key whose value starts at line.
func fieldAt(n *yaml.Node, line int, prefix string) string {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if f := fieldAt(c, line, prefix); f != "" {
				return f
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			path := k.Value
			if prefix != "" {
				path = prefix + "." + k.Value
			}
			// A block mapping starts on its first key's line, which
			// is that key's; anything else on the line is this key's.
			if v.Line == line && (v.Kind != yaml.MappingNode || v.Style&yaml.FlowStyle != 0) {
				return path
			}
			if f := fieldAt(v, line, path); f != "" {
				return f
			}
		}
	}
	return ""
}

func sectionName(goType string) string {
	switch goType {
	case "Spec":
		return "the top level"
	case "Network":
		return "network"
	case "DHCP":
		return "network.dhcp"
	case "Guests":
		return "guests"
	case "Users":
		return "users"
	case "Xen":
		return "xen"
	}
	return goType
}

// FieldError is a validation failure naming the spec field and what was expected.
type FieldError struct {
	Field    string
	Value    string
	Expected string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %q: expected %s", e.Field, e.Value, e.Expected)
}

var (
	labNameRE = regexp.MustCompile(`^[a-z][a-z0-9-]*$`)
	ifNameRE  = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)
)

// MaxLabName keeps "<lab>-dom0" and per-guest names short enough for netns
// file names and readable in `ip netns list`.
const MaxLabName = 24

// Validate checks every field and returns all problems joined, each naming its field.
func (s Spec) Validate() error {
	var errs fieldErrors
	if s.Lab == "" || len(s.Lab) > MaxLabName || !labNameRE.MatchString(s.Lab) || strings.HasSuffix(s.Lab, "-") {
		errs.add("lab", s.Lab, fmt.Sprintf("a name of 1-%d lower-case letters, digits and '-', starting with a letter", MaxLabName))
	}
	r := s.Network.validate(&errs)
	s.Guests.validate(&errs, r)
	s.Xen.validate(&errs)
	if s.Users.Iterations < 1000 || s.Users.Iterations > 10_000_000 {
		errs.add("users.iterations", fmt.Sprint(s.Users.Iterations), "PBKDF2 iterations from 1000 to 10000000")
	}
	return errors.Join(errs...)
}

// fieldErrors collects a spec's FieldErrors: every wrong field is named
// at once, not the first only.
type fieldErrors []error

func (e *fieldErrors) add(field, value, expected string) {
	*e = append(*e, &FieldError{Field: field, Value: value, Expected: expected})
}

// dhcpRange is network.dhcp's range as validate read it; ok when both
// ends are IPv4 addresses.
type dhcpRange struct {
	start, end netip.Addr
	ok         bool
}

func checkIfName(errs *fieldErrors, field, v string) {
	switch {
	case v == "":
		errs.add(field, v, "an interface name (not empty)")
	case len(v) > 15:
		errs.add(field, v, "an interface name of at most 15 bytes (IFNAMSIZ-1)")
	case !ifNameRE.MatchString(v) || v == "." || v == "..":
		errs.add(field, v, "an interface name of letters, digits, '_', '.' and '-'")
	}
}

// validate checks the network section and returns its DHCP range.
func (n Network) validate(errs *fieldErrors) dhcpRange {
	checkIfName(errs, "network.bridge", n.Bridge)
	checkIfName(errs, "network.uplink", n.Uplink)
	if n.Bridge != "" && n.Bridge == n.Uplink {
		errs.add("network.uplink", n.Uplink, "a name different from network.bridge")
	}
	bridge := n.Address.Prefix()
	bridgeOK := bridge.IsValid() && bridge.Addr().Is4() && bridge.Bits() <= 30 && bridge.Bits() >= 8
	if !bridgeOK {
		errs.add("network.address", n.Address.String(), "an IPv4 address with prefix length 8-30 in CIDR form, like 192.168.77.2/24")
	}
	subnet := bridge.Masked()
	if bridgeOK && (bridge.Addr() == subnet.Addr() || bridge.Addr() == lastAddr(subnet)) {
		errs.add("network.address", n.Address.String(), "a host address, not the network or broadcast address of "+subnet.String())
		bridgeOK = false
	}
	host := n.HostAddress.Prefix()
	switch {
	case !host.IsValid() || !host.Addr().Is4():
		errs.add("network.host_address", n.HostAddress.String(), "an IPv4 address in CIDR form, like 192.168.77.1/24")
	case bridgeOK && (host.Masked() != subnet):
		errs.add("network.host_address", n.HostAddress.String(), "an address in the lab subnet "+subnet.String()+" with the same prefix length")
	case bridgeOK && host.Addr() == bridge.Addr():
		errs.add("network.host_address", n.HostAddress.String(), "an address different from network.address")
	}
	r := n.DHCP.parse(errs)
	if r.ok && bridgeOK {
		start, end := r.start, r.end
		switch {
		case !subnet.Contains(start) || start == subnet.Addr() || start == lastAddr(subnet):
			errs.add("network.dhcp.start", n.DHCP.Start.String(), "a host address inside the subnet "+subnet.String())
		case !subnet.Contains(end) || end == subnet.Addr() || end == lastAddr(subnet):
			errs.add("network.dhcp.end", n.DHCP.End.String(), "a host address inside the subnet "+subnet.String())
		case end.Less(start):
			errs.add("network.dhcp.end", n.DHCP.End.String(), "an address not below network.dhcp.start "+n.DHCP.Start.String())
		case !bridge.Addr().Less(start) && !end.Less(bridge.Addr()):
			errs.add("network.dhcp", n.DHCP.Start.String()+"-"+n.DHCP.End.String(), "a range that does not contain the bridge address "+bridge.Addr().String())
		case host.IsValid() && !host.Addr().Less(start) && !end.Less(host.Addr()):
			errs.add("network.dhcp", n.DHCP.Start.String()+"-"+n.DHCP.End.String(), "a range that does not contain the host address "+host.Addr().String())
		}
	}
	if time.Duration(n.DHCP.Lease) < 2*time.Minute {
		errs.add("network.dhcp.lease", n.DHCP.Lease.String(), "a lease time of at least 2m (dnsmasq's minimum)")
	} else if time.Duration(n.DHCP.Lease) > MaxLease {
		errs.add("network.dhcp.lease", n.DHCP.Lease.String(), "a lease time of at most "+MaxLease.String()+" (a guest that left keeps its address that long)")
	}
	return r
}

// parse reads the DHCP range's ends, naming each one that is not IPv4.
func (d DHCP) parse(errs *fieldErrors) dhcpRange {
	start, end := d.Start.Addr(), d.End.Addr()
	if !start.Is4() {
		errs.add("network.dhcp.start", d.Start.String(), "an IPv4 address like 192.168.77.3")
	}
	if !end.Is4() {
		errs.add("network.dhcp.end", d.End.String(), "an IPv4 address like 192.168.77.200")
	}
	return dhcpRange{start: start, end: end, ok: start.Is4() && end.Is4()}
}

// validate checks the guests section; r is the DHCP range they are
// pinned into.
func (g Guests) validate(errs *fieldErrors, r dhcpRange) {
	if g.Name == "" || len(g.Name) > 20 || !labNameRE.MatchString(g.Name) {
		errs.add("guests.name", g.Name, "a name of 1-20 lower-case letters, digits and '-', starting with a letter")
	}
	if g.Replicas < 1 || g.Replicas > MaxReplicas {
		errs.add("guests.replicas", fmt.Sprint(g.Replicas), fmt.Sprintf("a number of guests from 1 to %d", MaxReplicas))
	} else if r.ok && !r.end.Less(r.start) && rangeSize(r.start, r.end) < g.Replicas {
		errs.add("guests.replicas", fmt.Sprint(g.Replicas), fmt.Sprintf("at most %d guests: each is pinned to an address of the DHCP range", rangeSize(r.start, r.end)))
	}
	if _, ok := runtimeAdapters[g.Runtime]; !ok {
		errs.add("guests.runtime", g.Runtime, runtimesExpected())
	}
	if g.Port < 1 || g.Port > 65535 {
		errs.add("guests.port", fmt.Sprint(g.Port), "a TCP port 1-65535")
	}
	if g.Memory < 16 || g.Memory > 4096 {
		errs.add("guests.memory", fmt.Sprint(g.Memory), "MiB from 16 to 4096 (16 is too little for the article's unikernel; 32 works)")
	}
}

// validate checks the xen section (used by the xen runtime only, but
// checked always: a spec is valid or not whatever the runtime).
func (x Xen) validate(errs *fieldErrors) {
	if x.XL == "" || strings.ContainsAny(x.XL, "\x00\n") {
		errs.add("xen.xl", x.XL, "the xl command (a name on PATH or an absolute path)")
	}
	for _, e := range x.validateToolchain() {
		errs.add(e.Field, e.Value, e.Expected)
	}
	if x.Kernel != "" && !filepath.IsAbs(x.Kernel) {
		errs.add("xen.kernel", x.Kernel, "an absolute path to a built unikernel (dist/auth.xen), or empty to build in dom0")
	}
	if strings.ContainsAny(x.Extra, "'\n\x00") {
		errs.add("xen.extra", x.Extra, "boot arguments without quotes or newlines")
	}
}

// MaxReplicas bounds one lab's guests (one /24's worth).
const MaxReplicas = 250

func rangeSize(start, end netip.Addr) int {
	a, b := start.As4(), end.As4()
	x := int(a[0])<<24 | int(a[1])<<16 | int(a[2])<<8 | int(a[3])
	y := int(b[0])<<24 | int(b[1])<<16 | int(b[2])<<8 | int(b[3])
	return y - x + 1
}

// Subnet is the lab's network prefix (masked bridge address).
func (s Spec) Subnet() netip.Prefix { return s.Network.Address.Prefix().Masked() }

// BridgeAddr is the bridge's address with its prefix length.
func (s Spec) BridgeAddr() netip.Prefix { return s.Network.Address.Prefix() }

// HostAddr is the host side's address with its prefix length.
func (s Spec) HostAddr() netip.Prefix { return s.Network.HostAddress.Prefix() }

// YAML renders the spec (used to record what was applied).
func (s Spec) YAML() []byte {
	b, err := yaml.Marshal(s)
	if err != nil {
		panic(err)
	}
	return b
}

func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v |= host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}
