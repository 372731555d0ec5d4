package netsetup

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

// Ruleset is what the kernel holds in the ip-family nf_tables ruleset of
// the calling thread's network namespace: the tables, chains and rules
// iptables-nft's iptables-save reads and prints (nft_cache fetches them by
// NFT_MSG_GETTABLE/GETCHAIN/GETRULE dumps; iptables 1.8.9
// iptables/nft-cache.c), reduced to a digest.
//
// The digest leaves out what iptables-save does not print and what moves
// on its own: handles, positions and padding (netlink bookkeeping), chain
// policy counters and rule counter expressions' values (traffic; printed
// only as "[packets:bytes]", which ParseSave ignores), and the generation
// stamped in each answer's nfgenmsg. Everything else enters it: names,
// hooks, policies, flags, use counts, every other expression's data,
// user data (iptables-nft keeps comments there). So two equal digests,
// read with the same iptables-save binary, print the same rules: the
// digest is a key under which an iptables-save output can be kept for
// reuse, in any namespace, at any generation.
//
// Attribute numbers: include/uapi/linux/netfilter/nf_tables.h (enum
// nft_table_attributes, nft_chain_attributes, nft_rule_attributes,
// nft_expr_attributes).
type Ruleset struct {
	Digest string          // hex SHA-256 of the reduced dump
	Gen    Generation      // the generation it was read at (unchanged across the dumps)
	Tables map[string]bool // the ip-family table names
}

// attribute numbers not (all) in golang.org/x/sys/unix.
const (
	nftaTablePad    = 5
	nftaTableHandle = 4
	nftaChainPad    = 9
	nftaRulePosID   = 10
)

// dropped lists, per message type, the attributes that are bookkeeping or
// traffic rather than rules.
var dropped = map[uint16]map[uint16]bool{
	unix.NFT_MSG_NEWTABLE: {nftaTableHandle: true, nftaTablePad: true},
	unix.NFT_MSG_NEWCHAIN: {unix.NFTA_CHAIN_HANDLE: true, unix.NFTA_CHAIN_COUNTERS: true, nftaChainPad: true},
	unix.NFT_MSG_NEWRULE: {unix.NFTA_RULE_HANDLE: true, unix.NFTA_RULE_POSITION: true, unix.NFTA_RULE_PAD: true,
		unix.NFTA_RULE_ID: true, nftaRulePosID: true},
}

// ErrRulesetMoved: a transaction committed while the ruleset was read; the
// dumps may mix two states, so there is no digest to give.
var ErrRulesetMoved = errors.New("the nf_tables ruleset changed while it was read")

// NFTRuleset reads the ip-family ruleset of the calling thread's namespace
// on this thread (raw syscalls, like NFTGeneration) and digests it. The
// generation is asked before and after the three dumps; a move between
// them is ErrRulesetMoved.
func NFTRuleset() (Ruleset, error) {
	fd, err := nftSocket()
	if err != nil {
		return Ruleset{}, fmt.Errorf("nf_tables ruleset: %w", err)
	}
	defer unix.Close(fd)
	before, err := generationOn(fd)
	if err != nil {
		return Ruleset{}, err
	}
	d := newRulesetDigest()
	buf := make([]byte, 1<<17)
	for i, typ := range []uint16{unix.NFT_MSG_GETTABLE, unix.NFT_MSG_GETCHAIN, unix.NFT_MSG_GETRULE} {
		seq := uint32(2 + i)
		if err := unix.Sendto(fd, dumpRequest(typ, seq), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
			return Ruleset{}, fmt.Errorf("nf_tables ruleset: dump request: %w", err)
		}
		for done := false; !done; {
			n, _, flags, _, err := unix.Recvmsg(fd, buf, nil, 0)
			if err != nil {
				return Ruleset{}, fmt.Errorf("nf_tables ruleset: dump: %w", err)
			}
			if flags&unix.MSG_TRUNC != 0 {
				return Ruleset{}, fmt.Errorf("nf_tables ruleset: dump: message larger than %d bytes", len(buf))
			}
			if done, err = d.add(buf[:n]); err != nil {
				return Ruleset{}, fmt.Errorf("nf_tables ruleset: %w", err)
			}
		}
	}
	after, err := generationOn(fd)
	if err != nil {
		return Ruleset{}, err
	}
	if after != before {
		return Ruleset{}, ErrRulesetMoved
	}
	return Ruleset{Digest: d.sum(), Gen: before, Tables: d.tables}, nil
}

// generationOn asks NFT_MSG_GETGEN on fd and returns it with fd's
// namespace cookie.
func generationOn(fd int) (Generation, error) {
	cookie, err := unix.GetsockoptUint64(fd, unix.SOL_SOCKET, unix.SO_NETNS_COOKIE)
	if err != nil {
		return Generation{}, fmt.Errorf("nf_tables generation: SO_NETNS_COOKIE: %w", err)
	}
	if err := unix.Sendto(fd, genRequest(), 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return Generation{}, fmt.Errorf("nf_tables generation: request: %w", err)
	}
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return Generation{}, fmt.Errorf("nf_tables generation: answer: %w", err)
	}
	id, err := ParseGenAnswer(buf[:n])
	if err != nil {
		return Generation{}, fmt.Errorf("nf_tables generation: %w", err)
	}
	return Generation{Netns: cookie, ID: id}, nil
}

// dumpRequest is a GET… dump of the ip family (nfgenmsg: NFPROTO_IPV4,
// NFNETLINK_V0, res_id 0).
func dumpRequest(typ uint16, seq uint32) []byte {
	const size = unix.NLMSG_HDRLEN + 4
	b := make([]byte, size)
	binary.NativeEndian.PutUint32(b[0:], size)
	binary.NativeEndian.PutUint16(b[4:], unix.NFNL_SUBSYS_NFTABLES<<8|typ)
	binary.NativeEndian.PutUint16(b[6:], unix.NLM_F_REQUEST|unix.NLM_F_DUMP)
	binary.NativeEndian.PutUint32(b[8:], seq)
	b[unix.NLMSG_HDRLEN] = unix.NFPROTO_IPV4
	return b
}

// rulesetDigest collects dump answers as they arrive, each message
// reduced, and hashes them in an order of their own: the kernel lists
// chains in the order they were made, which iptables-save does not print
// (it sorts them: base chains by hook, then user chains by name,
// iptables/nft-cache.c nft_cache_add_chain), so the same rules made in
// another order are the same key. Tables are sorted too (iptables-save
// prints them in its own order); rules stay in order within their chain,
// which is what a chain means.
type rulesetDigest struct {
	tables map[string]bool
	msgs   [][]byte          // reduced tables and chains
	rules  map[string][]byte // table NUL chain → its rules, reduced, in order
	cur    bytes.Buffer
}

func newRulesetDigest() *rulesetDigest {
	return &rulesetDigest{tables: map[string]bool{}, rules: map[string][]byte{}}
}

func (d *rulesetDigest) sum() string {
	h := sha256.New()
	slices.SortFunc(d.msgs, bytes.Compare)
	for _, m := range d.msgs {
		h.Write(m)
	}
	for _, k := range slices.Sorted(maps.Keys(d.rules)) {
		h.Write([]byte(k))
		h.Write(d.rules[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// add reduces one read of a dump's answer; done at NLMSG_DONE.
func (d *rulesetDigest) add(b []byte) (done bool, err error) {
	msgs, err := syscall.ParseNetlinkMessage(b)
	if err != nil {
		return false, fmt.Errorf("dump answer: %w", err)
	}
	for _, m := range msgs {
		if m.Header.Flags&unix.NLM_F_DUMP_INTR != 0 {
			return false, ErrRulesetMoved
		}
		switch m.Header.Type {
		case unix.NLMSG_DONE:
			return true, nil
		case unix.NLMSG_ERROR:
			if len(m.Data) < 4 {
				return false, errors.New("short netlink error")
			}
			if errno := -int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
				return false, unix.Errno(errno)
			}
			continue
		}
		if m.Header.Type>>8 != unix.NFNL_SUBSYS_NFTABLES || len(m.Data) < 4 {
			return false, fmt.Errorf("unexpected message type %#x in a dump", m.Header.Type)
		}
		if err := d.message(m.Header.Type&0xff, m.Data); err != nil {
			return false, err
		}
	}
	return false, nil
}

// message reduces one NEWTABLE, NEWCHAIN or NEWRULE message.
func (d *rulesetDigest) message(typ uint16, data []byte) error {
	drop, ok := dropped[typ]
	if !ok {
		return fmt.Errorf("unexpected nf_tables message %d in a dump", typ)
	}
	d.cur.Reset()
	// The nfgenmsg: the family enters, res_id (the generation) does not.
	d.cur.Write([]byte{byte(typ), data[0], data[1]})
	var table, chain string
	err := eachAttr(data[4:], func(t uint16, raw, val []byte) error {
		switch {
		case drop[t]:
			return nil
		case typ == unix.NFT_MSG_NEWTABLE && t == unix.NFTA_TABLE_NAME:
			d.tables[cString(val)] = true
		case typ == unix.NFT_MSG_NEWRULE && t == unix.NFTA_RULE_TABLE:
			table = cString(val)
		case typ == unix.NFT_MSG_NEWRULE && t == unix.NFTA_RULE_CHAIN:
			chain = cString(val)
		case typ == unix.NFT_MSG_NEWRULE && t == unix.NFTA_RULE_EXPRESSIONS:
			return d.expressions(raw, val)
		}
		d.cur.Write(raw)
		return nil
	})
	if err != nil {
		return err
	}
	// Lengths first: no two lists of messages concatenate alike.
	m := binary.BigEndian.AppendUint32(nil, uint32(d.cur.Len()))
	m = append(m, d.cur.Bytes()...)
	if typ == unix.NFT_MSG_NEWRULE {
		k := table + "\x00" + chain
		d.rules[k] = append(d.rules[k], m...)
		return nil
	}
	d.msgs = append(d.msgs, m)
	return nil
}

// expressions reduces a rule's expression list, each counter's values left
// out (its name stays: a rule with a counter is not one without).
func (d *rulesetDigest) expressions(raw, list []byte) error {
	d.cur.Write(raw[:unix.SizeofNlAttr])
	return eachAttr(list, func(_ uint16, elemRaw, elem []byte) error {
		d.cur.Write(elemRaw[:unix.SizeofNlAttr])
		var name string
		return eachAttr(elem, func(t uint16, r, v []byte) error {
			switch t {
			case unix.NFTA_EXPR_NAME:
				name = cString(v)
			case unix.NFTA_EXPR_DATA:
				if name == "counter" {
					d.cur.WriteString("counter-data")
					return nil
				}
			}
			d.cur.Write(r)
			return nil
		})
	})
}

// eachAttr walks netlink attributes: f gets the type (flags cleared), the
// whole attribute as it stands and its value.
func eachAttr(b []byte, f func(t uint16, raw, val []byte) error) error {
	for len(b) > 0 {
		if len(b) < unix.SizeofNlAttr {
			return fmt.Errorf("truncated attribute (%d bytes)", len(b))
		}
		l := int(binary.NativeEndian.Uint16(b[0:]))
		if l < unix.SizeofNlAttr || l > len(b) {
			return fmt.Errorf("bad attribute length %d", l)
		}
		t := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if err := f(t, b[:l], b[unix.SizeofNlAttr:l]); err != nil {
			return err
		}
		next := (l + unix.NLA_ALIGNTO - 1) &^ (unix.NLA_ALIGNTO - 1)
		if next >= len(b) {
			return nil
		}
		b = b[next:]
	}
	return nil
}

// cString is a NUL-terminated netlink string's text.
func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
