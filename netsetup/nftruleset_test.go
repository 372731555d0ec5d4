package netsetup

import (
	"bytes"
	"encoding/binary"
	"net"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/labctl/labctl/internal/testenv"
)

const digestPayload = `*nat
:LABCTL-POST - [0:0]
-A LABCTL-POST -s 192.168.77.0/24 -d 224.0.0.0/24 -m comment --comment labctl:t -j RETURN
-A LABCTL-POST -s 192.168.77.0/24 ! -d 192.168.77.0/24 -m comment --comment labctl:t -j MASQUERADE
-I POSTROUTING 1 -m comment --comment labctl:t -j LABCTL-POST
COMMIT
*filter
:LABCTL-FWD - [0:0]
-A LABCTL-FWD -i br0 -m comment --comment labctl:t -j ACCEPT
-A LABCTL-FWD -o br0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment labctl:t -j ACCEPT
-I FORWARD 1 -m comment --comment labctl:t -j LABCTL-FWD
COMMIT
`

// The digest is a key for iptables-save's output: equal rules give equal
// digests whatever their handles, counters, generation or namespace, and
// then iptables-save prints the same; any rule change gives another.
func TestNFTRuleset(t *testing.T) {
	a, _ := newNamedNS(t)
	b, _ := newNamedNS(t)
	testenv.RequireTool(t, "iptables-restore")
	read := func(ns string) Ruleset {
		t.Helper()
		var r Ruleset
		if err := inNamedNS(ns, func() (err error) { r, err = NFTRuleset(); return err }); err != nil {
			t.Fatal(err)
		}
		return r
	}
	run := func(ns, stdin string, args ...string) string {
		t.Helper()
		cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v: %v: %s", ns, args, err, out)
		}
		return string(out)
	}
	// iptables-save without its dated comment lines.
	save := func(ns string) string {
		return regexp.MustCompile(`(?m)^#.*\n`).ReplaceAllString(run(ns, "", "iptables-save"), "")
	}

	empty := read(a)
	if len(empty.Tables) != 0 || empty.Gen.Netns == 0 {
		t.Fatalf("a new namespace: %+v, want no tables and a namespace cookie", empty)
	}
	run(a, digestPayload, "iptables-restore", "--noflush")
	r1 := read(a)
	if r1.Digest == empty.Digest || !r1.Tables["nat"] || !r1.Tables["filter"] {
		t.Fatalf("after the restore: %+v (empty was %s): want another digest and tables nat, filter", r1, empty.Digest)
	}
	saved1 := save(a)
	if again := read(a); again.Digest != r1.Digest {
		t.Fatalf("read twice (an iptables-save between): %s then %s", r1.Digest, again.Digest)
	}

	// Traffic moves the counters iptables-nft puts in every rule and the
	// base chains' policy counters, not the digest.
	postrouting := func() string { return run(a, "", "iptables", "-t", "nat", "-L", "POSTROUTING", "-v", "-x", "-n") }
	before := postrouting()
	err := inNamedNS(a, func() error {
		if err := exec.Command("ip", "link", "set", "lo", "up").Run(); err != nil {
			return err
		}
		c, err := net.Dial("udp", "127.0.0.1:9")
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if after := postrouting(); after == before {
		t.Fatalf("no counter moved: the test would prove nothing:\n%s", after)
	}
	if r := read(a); r.Digest != r1.Digest {
		t.Fatal("traffic (counters) changed the digest")
	}

	// The same rules made anew: other handles, another generation.
	run(a, "", "iptables", "-t", "nat", "-F")
	run(a, "", "iptables", "-t", "nat", "-X", "LABCTL-POST")
	run(a, "", "iptables", "-F")
	run(a, "", "iptables", "-X", "LABCTL-FWD")
	run(a, digestPayload, "iptables-restore", "--noflush")
	if r := read(a); r.Digest != r1.Digest || r.Gen.ID == r1.Gen.ID {
		t.Fatalf("the same rules made anew: digest %s gen %d, want %s at another gen than %d", r.Digest, r.Gen.ID, r1.Digest, r1.Gen.ID)
	}
	// (The kernel now lists POSTROUTING before LABCTL-POST, made after it:
	// iptables-save sorts chains, and so does the digest.)
	if s := save(a); s != saved1 {
		t.Fatalf("equal digests, different iptables-save:\n%s\n---\n%s", saved1, s)
	}

	// Another namespace, same rules: same digest, and iptables-save prints
	// the same there.
	run(b, digestPayload, "iptables-restore", "--noflush")
	if rb := read(b); rb.Digest != r1.Digest {
		t.Fatalf("the same rules in another namespace: %s, want %s", rb.Digest, r1.Digest)
	}
	if sa, sb := save(a), save(b); sa != sb {
		t.Fatalf("equal digests, different iptables-save:\n%s\n---\n%s", sa, sb)
	}

	// Any change to a rule is another digest: a comment, a rule's order,
	// a policy.
	for _, change := range [][]string{
		{"iptables", "-t", "nat", "-R", "LABCTL-POST", "1", "-s", "192.168.77.0/24", "-d", "224.0.0.0/24", "-m", "comment", "--comment", "labctl:u", "-j", "RETURN"},
		{"iptables", "-P", "FORWARD", "DROP"},
		{"iptables", "-t", "nat", "-N", "OTHER"},
	} {
		run(b, "", change...)
		if rb := read(b); rb.Digest == r1.Digest {
			t.Fatalf("after %v the digest is unchanged", change)
		}
	}
}

// nftMessage is an nf_tables message of type typ: nfgenmsg then attrs.
func nftMessage(typ uint16, flags uint16, resID uint16, attrs ...[]byte) []byte {
	payload := []byte{unix.NFPROTO_IPV4, 0, byte(resID >> 8), byte(resID)}
	for _, a := range attrs {
		payload = append(payload, a...)
	}
	m := genMessage(unix.NFNL_SUBSYS_NFTABLES<<8|typ, payload)
	binary.NativeEndian.PutUint16(m[6:], flags)
	return m
}

func nested(typ uint16, attrs ...[]byte) []byte {
	return genAttr(typ|unix.NLA_F_NESTED, bytes.Join(attrs, nil))
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// rule is a NEWRULE message with a handle, a counter and an immediate.
func rule(handle uint64, packets uint64, comment string) []byte {
	counter := nested(unix.NFTA_LIST_ELEM, genAttr(unix.NFTA_EXPR_NAME, []byte("counter\x00")),
		nested(unix.NFTA_EXPR_DATA, genAttr(1, u64(packets*100)), genAttr(2, u64(packets))))
	imm := nested(unix.NFTA_LIST_ELEM, genAttr(unix.NFTA_EXPR_NAME, []byte("immediate\x00")),
		nested(unix.NFTA_EXPR_DATA, genAttr(1, []byte{0, 0, 0, 0})))
	return nftMessage(unix.NFT_MSG_NEWRULE, unix.NLM_F_MULTI, uint16(handle),
		genAttr(unix.NFTA_RULE_TABLE, []byte("nat\x00")),
		genAttr(unix.NFTA_RULE_CHAIN, []byte("POSTROUTING\x00")),
		genAttr(unix.NFTA_RULE_HANDLE, u64(handle)),
		nested(unix.NFTA_RULE_EXPRESSIONS, counter, imm),
		genAttr(unix.NFTA_RULE_USERDATA, []byte(comment)))
}

func digestOf(t *testing.T, msgs ...[]byte) (string, bool) {
	t.Helper()
	d := newRulesetDigest()
	done, err := d.add(bytes.Join(msgs, nil))
	if err != nil {
		t.Fatal(err)
	}
	return d.sum(), done
}

func TestRulesetDigestAdd(t *testing.T) {
	done := genMessage(unix.NLMSG_DONE, []byte{0, 0, 0, 0})
	base, ok := digestOf(t, rule(5, 0, "labctl:a"), done)
	if !ok {
		t.Fatal("NLMSG_DONE did not end the dump")
	}
	if d, _ := digestOf(t, rule(9, 0, "labctl:a"), done); d != base {
		t.Error("another handle changed the digest")
	}
	if d, _ := digestOf(t, rule(5, 42, "labctl:a"), done); d != base {
		t.Error("counter values changed the digest")
	}
	if d, _ := digestOf(t, rule(5, 0, "labctl:b"), done); d == base {
		t.Error("another comment left the digest as it was")
	}
	if d, _ := digestOf(t, rule(5, 0, "labctl:a"), rule(6, 0, "labctl:a"), done); d == base {
		t.Error("a second rule left the digest as it was")
	}
	if _, ok := digestOf(t, rule(5, 0, "labctl:a")); ok {
		t.Error("done without NLMSG_DONE")
	}

	e := -int32(unix.EBUSY)
	ebusy := uint32(e)
	bad := map[string][]byte{
		"interrupted dump": nftMessage(unix.NFT_MSG_NEWRULE, unix.NLM_F_MULTI|unix.NLM_F_DUMP_INTR, 0),
		"kernel error":     genMessage(unix.NLMSG_ERROR, binary.NativeEndian.AppendUint32(nil, ebusy)),
		"set message":      nftMessage(unix.NFT_MSG_NEWSET, 0, 0),
		"other subsystem":  genMessage(unix.NFNL_SUBSYS_CTNETLINK<<8, []byte{2, 0, 0, 0}),
		"bad attribute":    nftMessage(unix.NFT_MSG_NEWTABLE, 0, 0, []byte{200, 0, 1, 0}),
	}
	for name, b := range bad {
		if _, err := newRulesetDigest().add(b); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	d := newRulesetDigest()
	if _, err := d.add(nftMessage(unix.NFT_MSG_NEWTABLE, 0, 0, genAttr(unix.NFTA_TABLE_NAME, []byte("nat\x00")))); err != nil || !d.tables["nat"] {
		t.Errorf("table message: err %v, tables %v", err, d.tables)
	}
}

func FuzzRulesetDigestAdd(f *testing.F) {
	f.Add(rule(5, 3, "labctl:a"))
	f.Add(nftMessage(unix.NFT_MSG_NEWTABLE, 0, 0, genAttr(unix.NFTA_TABLE_NAME, []byte("nat\x00"))))
	f.Add(genMessage(unix.NLMSG_DONE, []byte{0, 0, 0, 0}))
	f.Fuzz(func(t *testing.T, b []byte) {
		newRulesetDigest().add(b) // must not panic, whatever the kernel sends
	})
}
