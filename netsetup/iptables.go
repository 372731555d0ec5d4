package netsetup

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"

	"github.com/coreos/go-iptables/iptables"
	"github.com/google/nftables"
	"golang.org/x/sys/unix"
)

// labctl's own chains. Rules live only in them; each built-in chain gets
// exactly one jump, so ownership is obvious in `iptables-save` and removal
// never touches anyone else's rules.
const (
	ChainNAT     = "LABCTL-POST" // nat: jumped to from POSTROUTING
	ChainForward = "LABCTL-FWD"  // filter: jumped to from FORWARD
)

// Comment marks every labctl rule with the lab it belongs to.
func Comment(lab string) string { return "labctl:" + lab }

// Rule is one rule in iptables-save syntax, without the leading "-A CHAIN".
type Rule struct {
	Table string `json:"table"`
	Chain string `json:"chain"`
	Spec  string `json:"spec"`
}

func (r Rule) String() string { return r.Table + "/" + r.Chain + ": " + r.Spec }

// RuleSet is labctl's desired rules: its chains' full contents and the
// jumps into them.
type RuleSet struct {
	Chains map[string][]Rule // "table/chain" -> rules, in order
	Jumps  []Rule            // one per built-in chain
}

// DesiredRules renders the lab's rules exactly as iptables-save prints
// them, so observed and desired compare as strings.
func DesiredRules(lab, bridge string, subnet netip.Prefix, nat bool) RuleSet {
	c := fmt.Sprintf(`-m comment --comment "%s"`, Comment(lab))
	rs := RuleSet{Chains: map[string][]Rule{}}
	fwd := []Rule{
		// Guests' traffic (and, with br_netfilter loaded as Docker does,
		// bridged host↔guest traffic) passes even where FORWARD's policy
		// is DROP.
		{"filter", ChainForward, fmt.Sprintf("-i %s %s -j ACCEPT", bridge, c)},
		// Replies to the guests' outgoing connections; nothing new comes in.
		{"filter", ChainForward, fmt.Sprintf("-o %s -m conntrack --ctstate RELATED,ESTABLISHED %s -j ACCEPT", bridge, c)},
	}
	rs.Chains["filter/"+ChainForward] = fwd
	rs.Jumps = append(rs.Jumps, Rule{"filter", "FORWARD", fmt.Sprintf("%s -j %s", c, ChainForward)})
	if nat {
		s := subnet.Masked().String()
		rs.Chains["nat/"+ChainNAT] = []Rule{
			// Like libvirt: multicast and broadcast leave unmasqueraded.
			{"nat", ChainNAT, fmt.Sprintf("-s %s -d 224.0.0.0/24 %s -j RETURN", s, c)},
			{"nat", ChainNAT, fmt.Sprintf("-s %s -d 255.255.255.255/32 %s -j RETURN", s, c)},
			{"nat", ChainNAT, fmt.Sprintf("-s %s ! -d %s %s -j MASQUERADE", s, s, c)},
		}
		rs.Jumps = append(rs.Jumps, Rule{"nat", "POSTROUTING", fmt.Sprintf("%s -j %s", c, ChainNAT)})
	}
	return rs
}

// Tables lists the tables the rule set uses, sorted.
func (rs RuleSet) Tables() []string {
	var ts []string
	for k := range rs.Chains {
		t, _, _ := strings.Cut(k, "/")
		if !slices.Contains(ts, t) {
			ts = append(ts, t)
		}
	}
	slices.Sort(ts)
	return ts
}

// ChainKeys lists "table/chain" of labctl's chains, sorted.
func (rs RuleSet) ChainKeys() []string {
	ks := make([]string, 0, len(rs.Chains))
	for k := range rs.Chains {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// Saved is a parsed iptables-save dump.
type Saved struct {
	Tables map[string]*SavedTable
}

// SavedTable is one "*table ... COMMIT" block.
type SavedTable struct {
	Chains map[string]string   // chain -> policy ("-" for user chains)
	Order  []string            // chains in declaration order
	Rules  map[string][]string // chain -> rule specs in order
}

// ParseSave parses iptables-save output. It rejects what it cannot read
// rather than guess, naming the line.
func ParseSave(b []byte) (Saved, error) {
	s := Saved{Tables: map[string]*SavedTable{}}
	var cur *SavedTable
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "*"):
			name := line[1:]
			if cur != nil || name == "" || strings.ContainsAny(name, " \t") {
				return s, fmt.Errorf("iptables-save line %d: unexpected table header %q", n, line)
			}
			cur = &SavedTable{Chains: map[string]string{}, Rules: map[string][]string{}}
			s.Tables[name] = cur
		case line == "COMMIT":
			if cur == nil {
				return s, fmt.Errorf("iptables-save line %d: COMMIT outside a table", n)
			}
			cur = nil
		case strings.HasPrefix(line, ":"):
			f := strings.Fields(line[1:])
			if cur == nil || len(f) < 2 {
				return s, fmt.Errorf("iptables-save line %d: expected \":CHAIN POLICY [p:b]\", got %q", n, line)
			}
			if _, dup := cur.Chains[f[0]]; !dup {
				cur.Order = append(cur.Order, f[0])
			}
			cur.Chains[f[0]] = f[1]
		case strings.HasPrefix(line, "-A "):
			chain, spec, _ := strings.Cut(line[3:], " ")
			if cur == nil || chain == "" {
				return s, fmt.Errorf("iptables-save line %d: rule outside a table: %q", n, line)
			}
			cur.Rules[chain] = append(cur.Rules[chain], spec)
		default:
			// Counters mode ("[0:0] -A ...") and other forms are not what labctl asks for.
			return s, fmt.Errorf("iptables-save line %d: unexpected %q", n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return s, fmt.Errorf("reading iptables-save: %w", err)
	}
	if cur != nil {
		return s, fmt.Errorf("iptables-save: table without COMMIT at end")
	}
	return s, nil
}

// HasChain reports whether table/chain exists.
func (s Saved) HasChain(table, chain string) bool {
	t := s.Tables[table]
	if t == nil {
		return false
	}
	_, ok := t.Chains[chain]
	return ok
}

// RulesOf returns the rule specs of table/chain.
func (s Saved) RulesOf(table, chain string) []string {
	if t := s.Tables[table]; t != nil {
		return t.Rules[chain]
	}
	return nil
}

// RuleDiff is what must change to bring the observed rules to the desired.
type RuleDiff struct {
	Rewrite     []string // "table/chain" whose content is not exactly the desired
	AddJumps    []Rule
	DeleteJumps []Rule // jumps into labctl chains that are not desired (stale lab name, duplicates)
}

// Empty reports whether nothing needs to change.
func (d RuleDiff) Empty() bool {
	return len(d.Rewrite) == 0 && len(d.AddJumps) == 0 && len(d.DeleteJumps) == 0
}

// Diff compares desired rules with an observed dump.
func Diff(want RuleSet, have Saved) RuleDiff {
	var d RuleDiff
	for _, k := range want.ChainKeys() {
		t, c, _ := strings.Cut(k, "/")
		var specs []string
		for _, r := range want.Chains[k] {
			specs = append(specs, r.Spec)
		}
		if !have.HasChain(t, c) || !slices.Equal(have.RulesOf(t, c), specs) {
			d.Rewrite = append(d.Rewrite, k)
		}
	}
	for _, j := range want.Jumps {
		n := 0
		for _, r := range have.RulesOf(j.Table, j.Chain) {
			if r == j.Spec {
				n++
			}
		}
		if n == 0 {
			d.AddJumps = append(d.AddJumps, j)
		}
		for ; n > 1; n-- {
			d.DeleteJumps = append(d.DeleteJumps, j)
		}
	}
	// Jumps into labctl's chains that the rule set does not want: left by
	// an earlier spec (another lab name, NAT since turned off).
	for _, t := range []string{"filter", "nat"} {
		for _, builtin := range []string{"FORWARD", "POSTROUTING", "INPUT", "OUTPUT", "PREROUTING"} {
			for _, r := range have.RulesOf(t, builtin) {
				if !jumpsToLabctl(r) {
					continue
				}
				j := Rule{t, builtin, r}
				if !slices.Contains(want.Jumps, j) {
					d.DeleteJumps = append(d.DeleteJumps, j)
				}
			}
		}
	}
	return d
}

func jumpsToLabctl(spec string) bool {
	return strings.HasSuffix(spec, "-j "+ChainNAT) || strings.HasSuffix(spec, "-j "+ChainForward)
}

// RestorePayload renders the changes as one iptables-restore --noflush
// input: applied atomically per table in one exec. Declaring a chain in
// --noflush mode flushes it, which rewrites labctl's chains whole.
func RestorePayload(want RuleSet, d RuleDiff) []byte {
	var b bytes.Buffer
	tables := map[string]bool{}
	for _, k := range d.Rewrite {
		t, _, _ := strings.Cut(k, "/")
		tables[t] = true
	}
	for _, j := range d.AddJumps {
		tables[j.Table] = true
	}
	for _, j := range d.DeleteJumps {
		tables[j.Table] = true
	}
	names := make([]string, 0, len(tables))
	for t := range tables {
		names = append(names, t)
	}
	slices.Sort(names)
	for _, t := range names {
		fmt.Fprintf(&b, "*%s\n", t)
		for _, k := range d.Rewrite {
			if tt, c, _ := strings.Cut(k, "/"); tt == t {
				fmt.Fprintf(&b, ":%s - [0:0]\n", c)
			}
		}
		for _, j := range d.DeleteJumps {
			if j.Table == t {
				fmt.Fprintf(&b, "-D %s %s\n", j.Chain, j.Spec)
			}
		}
		for _, k := range d.Rewrite {
			if tt, _, _ := strings.Cut(k, "/"); tt == t {
				for _, r := range want.Chains[k] {
					fmt.Fprintf(&b, "-A %s %s\n", r.Chain, r.Spec)
				}
			}
		}
		// First in the built-in chain, so a FORWARD DROP rule that Docker
		// or firewalld put there cannot shadow the lab.
		for _, j := range d.AddJumps {
			if j.Table == t {
				fmt.Fprintf(&b, "-I %s 1 %s\n", j.Chain, j.Spec)
			}
		}
		b.WriteString("COMMIT\n")
	}
	return b.Bytes()
}

// IPTables is the narrow interface labctl needs from the iptables tools.
type IPTables interface {
	// Save returns iptables-save output for all tables (one exec: the
	// cheapest observation, and it never creates a table by looking).
	Save(ctx context.Context) ([]byte, error)
	// Restore applies an iptables-restore --noflush payload atomically.
	Restore(ctx context.Context, payload []byte) error
	// DeleteRule removes one rule; a missing rule or chain is success.
	DeleteRule(ctx context.Context, table, chain, spec string) error
	// DeleteChain flushes and removes a chain; a missing one is success.
	DeleteChain(ctx context.Context, table, chain string) error
	// DeleteTables removes ip-family tables of the nf_tables backend in
	// one transaction (the legacy backend's tables are built in and cannot
	// be); a table already gone is success.
	DeleteTables(ctx context.Context, tables ...string) error
	// Version is `iptables --version`'s first line.
	Version(ctx context.Context) (string, error)
}

// System is the real IPTables: iptables-save/-restore for observation and
// converge, coreos/go-iptables for removing single rules and chains.
type System struct {
	ipt     *iptables.IPTables
	version string // Version's answer, once asked
}

// NewSystem uses the iptables tools on PATH.
func NewSystem() *System { return &System{} }

// tool returns the go-iptables handle, made on first use: it runs
// `iptables --version`, which a converged run does not need.
func (s *System) tool() (*iptables.IPTables, error) {
	if s.ipt != nil {
		return s.ipt, nil
	}
	ipt, err := iptables.New(iptables.Timeout(10))
	if err != nil {
		return nil, fmt.Errorf("iptables: %w", err)
	}
	s.ipt = ipt
	return ipt, nil
}

// Save implements IPTables.
func (s *System) Save(ctx context.Context) ([]byte, error) {
	out, err := runCmd(ctx, nil, "iptables-save")
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Restore implements IPTables.
func (s *System) Restore(ctx context.Context, payload []byte) error {
	_, err := runCmd(ctx, payload, "iptables-restore", "--noflush", "--wait", "10")
	if err != nil {
		return fmt.Errorf("applying rules:\n%s: %w", payload, err)
	}
	return nil
}

// DeleteRule implements IPTables.
func (s *System) DeleteRule(ctx context.Context, table, chain, spec string) error {
	args, err := SplitSpec(spec)
	if err != nil {
		return err
	}
	ipt, err := s.tool()
	if err != nil {
		return err
	}
	if err := ipt.DeleteIfExists(table, chain, args...); err != nil {
		if isMissing(err) {
			return nil
		}
		return fmt.Errorf("deleting %q from %s/%s: %w", spec, table, chain, err)
	}
	return nil
}

// DeleteChain implements IPTables.
func (s *System) DeleteChain(ctx context.Context, table, chain string) error {
	ipt, err := s.tool()
	if err != nil {
		return err
	}
	if err := ipt.ClearAndDeleteChain(table, chain); err != nil && !isMissing(err) {
		return fmt.Errorf("deleting chain %s/%s: %w", table, chain, err)
	}
	return nil
}

// DeleteTables implements IPTables over nf_tables' netlink interface, in
// the caller's network namespace: what `nft delete table ip T` does for
// each table, as one transaction and without an exec per table.
func (s *System) DeleteTables(ctx context.Context, tables ...string) error {
	c, err := nftables.New()
	if err != nil {
		return fmt.Errorf("nf_tables: %w", err)
	}
	del := func(ts ...string) error {
		for _, t := range ts {
			c.DelTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: t})
		}
		return c.Flush()
	}
	err = del(tables...)
	if !errors.Is(err, unix.ENOENT) || len(tables) == 1 {
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("deleting tables ip %s: %w", strings.Join(tables, ", ip "), err)
		}
		return nil
	}
	// One was gone already and the transaction refused them all: each
	// alone, where gone is success.
	for _, t := range tables {
		if err := del(t); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("deleting table ip %s: %w", t, err)
		}
	}
	return nil
}

// Version implements IPTables.
func (s *System) Version(ctx context.Context) (string, error) {
	// Asked once per System: the binary does not change under a run, and
	// teardown asks before each table it deletes.
	if s.version != "" {
		return s.version, nil
	}
	out, err := runCmd(ctx, nil, "iptables", "--version")
	if err != nil {
		return "", err
	}
	line, _, _ := strings.Cut(string(out), "\n")
	s.version = strings.TrimSpace(line)
	return s.version, nil
}

func isMissing(err error) bool {
	if e, ok := err.(*iptables.Error); ok && e.IsNotExist() {
		return true
	}
	m := err.Error()
	return strings.Contains(m, "No chain/target/match by that name") ||
		strings.Contains(m, "does not exist") || strings.Contains(m, "Table does not exist")
}

// SplitSpec splits an iptables-save rule spec into arguments, honouring
// the double quotes iptables-save puts around comments.
func SplitSpec(spec string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inQ, have := false, false
	for i := 0; i < len(spec); i++ {
		c := spec[i]
		switch {
		case c == '\\' && inQ && i+1 < len(spec):
			i++
			cur.WriteByte(spec[i])
		case c == '"':
			inQ = !inQ
			have = true
		case c == ' ' && !inQ:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if inQ {
		return nil, fmt.Errorf("rule %q: unterminated quote", spec)
	}
	if have {
		args = append(args, cur.String())
	}
	return args, nil
}

func runCmd(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return out, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return out, nil
}
