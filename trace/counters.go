package trace

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/labctl/labctl/netsetup"
)

// Counted is one rule of `iptables-save -c` with its packet counter.
type Counted struct {
	Spec    string // as iptables-save prints it, without "-A CHAIN"
	Packets uint64
}

// Counters is a parsed `iptables-save -c`: "table/chain" -> its rules in
// order. Policies' counters are left out: a policy's drops show as the
// chain's policy, which the doctor's forward-policy finding reads.
type Counters map[string][]Counted

// ParseCounters reads `iptables-save -c` output, whose rule lines are
// "[packets:bytes] -A CHAIN spec" (iptables' iptables-save.c prints the
// counters first when -c is given: `printf("[%llu:%llu] ", …)` in
// print_rule / nft's nft_rule_print_save with FMT_C_COUNTS). It rejects
// what it cannot read, naming the line.
func ParseCounters(b []byte) (Counters, error) {
	out := Counters{}
	table := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), "\r")
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "*"):
			table = line[1:]
			if table == "" {
				return nil, fmt.Errorf("iptables-save -c line %d: empty table name", n)
			}
		case line == "COMMIT":
			table = ""
		case strings.HasPrefix(line, "["):
			end := strings.Index(line, "]")
			if end < 0 || table == "" {
				return nil, fmt.Errorf("iptables-save -c line %d: %q: expected [packets:bytes] -A CHAIN … inside a table", n, line)
			}
			pk, _, ok := strings.Cut(line[1:end], ":")
			packets, err := strconv.ParseUint(pk, 10, 64)
			if !ok || err != nil {
				return nil, fmt.Errorf("iptables-save -c line %d: counters %q: expected [packets:bytes]", n, line[:end+1])
			}
			rest := strings.TrimPrefix(line[end+1:], " ")
			if !strings.HasPrefix(rest, "-A ") {
				return nil, fmt.Errorf("iptables-save -c line %d: %q: expected -A CHAIN after the counters", n, line)
			}
			chain, spec, _ := strings.Cut(rest[3:], " ")
			if chain == "" {
				return nil, fmt.Errorf("iptables-save -c line %d: no chain name", n)
			}
			k := table + "/" + chain
			out[k] = append(out[k], Counted{Spec: spec, Packets: packets})
		case strings.HasPrefix(line, "-A "):
			return nil, fmt.Errorf("iptables-save -c line %d: a rule without counters: was -c given?", n)
		default:
			return nil, fmt.Errorf("iptables-save -c line %d: unexpected %q", n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("iptables-save -c: %w", err)
	}
	return out, nil
}

// forwardDeltas compares counters taken before and after the probe: the
// packets labctl's forward accepts and MASQUERADE counted, and every
// DROP/REJECT rule of filter FORWARD (and labctl's chain) that counted
// any. Rules are matched by position and spec, so a rule inserted between
// the two reads counts from zero.
func forwardDeltas(before, after Counters) (accepted, masq uint64, dropped []string) {
	delta := func(k string, i int, r Counted) uint64 {
		if b := before[k]; i < len(b) && b[i].Spec == r.Spec && b[i].Packets <= r.Packets {
			return r.Packets - b[i].Packets
		}
		return r.Packets
	}
	for _, k := range []string{"filter/FORWARD", "filter/" + netsetup.ChainForward, "nat/" + netsetup.ChainNAT} {
		for i, r := range after[k] {
			d := delta(k, i, r)
			switch {
			case k == "filter/"+netsetup.ChainForward && strings.HasSuffix(r.Spec, "-j ACCEPT"):
				accepted += d
			case k == "nat/"+netsetup.ChainNAT && strings.HasSuffix(r.Spec, "-j MASQUERADE"):
				masq += d
			case d > 0 && (strings.HasSuffix(r.Spec, "-j DROP") || strings.Contains(r.Spec, "-j REJECT")):
				dropped = append(dropped, fmt.Sprintf("%s rule %d %q: %d packets", k, i+1, r.Spec, d))
			}
		}
	}
	return accepted, masq, dropped
}
