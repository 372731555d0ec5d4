package provision

import (
	"slices"
	"testing"

	"github.com/labctl/labctl/netsetup"
)

// One restore payload undoes a run of firewall entries: journaled jumps
// (no more copies than exist), every jump into a journaled chain, then
// the chain; what is already gone is left out, the user's rules stay.
func TestTeardownPayload(t *testing.T) {
	save := `*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:LABCTL-FWD - [0:0]
:USER-CHAIN - [0:0]
-A FORWARD -j LABCTL-FWD
-A FORWARD -j LABCTL-FWD
-A FORWARD -i user0 -j USER-CHAIN
-A LABCTL-FWD -i br0 -j ACCEPT
COMMIT
*nat
:POSTROUTING ACCEPT [0:0]
:LABCTL-POST - [0:0]
-A POSTROUTING -j LABCTL-POST
-A LABCTL-POST -s 192.168.77.0/24 -j MASQUERADE
COMMIT
`
	have, err := netsetup.ParseSave([]byte(save))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		run  []Entry
		want string
	}{
		{"jumps then chains", []Entry{
			{Kind: KindIPTJump, Table: "nat", Chain: "POSTROUTING", Spec: "-j LABCTL-POST"},
			{Kind: KindIPTJump, Table: "filter", Chain: "FORWARD", Spec: "-j LABCTL-FWD"},
			{Kind: KindIPTChain, Table: "nat", Chain: "LABCTL-POST"},
			{Kind: KindIPTChain, Table: "filter", Chain: "LABCTL-FWD"},
		}, "*filter\n-D FORWARD -j LABCTL-FWD\n-D FORWARD -j LABCTL-FWD\n-F LABCTL-FWD\n-X LABCTL-FWD\nCOMMIT\n" +
			"*nat\n-D POSTROUTING -j LABCTL-POST\n-F LABCTL-POST\n-X LABCTL-POST\nCOMMIT\n"},
		{"a jump journaled once, present twice", []Entry{
			{Kind: KindIPTJump, Table: "filter", Chain: "FORWARD", Spec: "-j LABCTL-FWD"},
		}, "*filter\n-D FORWARD -j LABCTL-FWD\nCOMMIT\n"},
		{"already gone", []Entry{
			{Kind: KindIPTJump, Table: "filter", Chain: "INPUT", Spec: "-j LABCTL-IN"},
			{Kind: KindIPTChain, Table: "filter", Chain: "LABCTL-IN"},
		}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(planFirewallUndo(have, tc.run).payload(nil)); got != tc.want {
				t.Errorf("payload:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// Runs of one batch kind are counted from the end of the journal.
func TestRunOf(t *testing.T) {
	es := []Entry{{Kind: KindLinkCreated}, {Kind: KindIPTChain}, {Kind: KindIPTJump}, {Kind: KindGuest}, {Kind: KindGuest}}
	for _, tc := range []struct {
		upto, want int
	}{{5, 2}, {3, 2}, {1, 0}} {
		if got := runOf(es[:tc.upto], batchKind(es[tc.upto-1].Kind)); got != tc.want {
			t.Errorf("runOf(es[:%d]) = %d, want %d", tc.upto, got, tc.want)
		}
	}
}

// A table is left empty by the undo only when nothing of anyone else's
// stays in it: no other chain, no other rule, no policy but ACCEPT.
func TestFirewallUndoEmpty(t *testing.T) {
	run := []Entry{
		{Kind: KindIPTJump, Table: "nat", Chain: "POSTROUTING", Spec: "-j LABCTL-POST"},
		{Kind: KindIPTChain, Table: "nat", Chain: "LABCTL-POST"},
		{Kind: KindIPTTable, Table: "nat"},
	}
	for _, tc := range []struct {
		name, save string
		empty      bool
	}{
		{"only labctl's", "*nat\n:POSTROUTING ACCEPT [0:0]\n:LABCTL-POST - [0:0]\n-A POSTROUTING -j LABCTL-POST\n-A LABCTL-POST -j MASQUERADE\nCOMMIT\n", true},
		{"a rule of the user's", "*nat\n:POSTROUTING ACCEPT [0:0]\n:LABCTL-POST - [0:0]\n-A POSTROUTING -j LABCTL-POST\n-A POSTROUTING -o wan -j MASQUERADE\nCOMMIT\n", false},
		{"a chain of the user's", "*nat\n:POSTROUTING ACCEPT [0:0]\n:LABCTL-POST - [0:0]\n:MINE - [0:0]\n-A POSTROUTING -j LABCTL-POST\nCOMMIT\n", false},
		{"a DROP policy", "*nat\n:POSTROUTING DROP [0:0]\n:LABCTL-POST - [0:0]\n-A POSTROUTING -j LABCTL-POST\nCOMMIT\n", false},
		{"a second copy of the jump", "*nat\n:POSTROUTING ACCEPT [0:0]\n:LABCTL-POST - [0:0]\n-A POSTROUTING -j LABCTL-POST\n-A POSTROUTING -j LABCTL-POST\nCOMMIT\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			have, err := netsetup.ParseSave([]byte(tc.save))
			if err != nil {
				t.Fatal(err)
			}
			u := planFirewallUndo(have, run)
			if u.empty["nat"] != tc.empty {
				t.Errorf("empty = %v, want %v (lines %q)", u.empty["nat"], tc.empty, u.lines["nat"])
			}
			if got := string(u.payload(map[string]bool{"nat": true})); got != "" {
				t.Errorf("payload with nat skipped = %q, want nothing", got)
			}
		})
	}
}

// The bridge's delete goes right after the addresses and routes come back
// to the uplink; what it makes moot, or what concerns other links only,
// follows it. undoInOrder runs the slice from its end.
func TestLinkDeleteEarly(t *testing.T) {
	br := Entry{Kind: KindLinkCreated, Link: "br0"}
	mac := Entry{Kind: KindLinkMAC, Link: "br0", Prior: "02:00:00:00:00:01"}
	up := Entry{Kind: KindLinkUp, Link: "br0"}
	master := Entry{Kind: KindLinkMaster, Link: "eth1"}
	addrBr := Entry{Kind: KindAddrAdded, Link: "br0", Addr: "192.168.77.2/24"}
	addrUp := Entry{Kind: KindAddrRemoved, Link: "eth1", Addr: "192.168.77.2/24"}
	routeBr := Entry{Kind: KindRouteAdded, Link: "br0", Spec: "default via 192.168.77.1"}
	promisc := Entry{Kind: KindPromisc, Link: "eth1"}
	fwd := Entry{Kind: KindSysctl, Key: "net.ipv4.ip_forward", Prior: "0"}
	tests := []struct {
		name      string
		lane      []Entry
		undoOrder []Entry // newest first, as undone
	}{
		{"provision's lane",
			[]Entry{br, mac, up, master, addrBr, addrUp, routeBr, promisc, fwd},
			[]Entry{routeBr, addrUp, br, fwd, promisc, addrBr, master, up, mac}},
		{"forwarding recorded before the bridge",
			[]Entry{fwd, br, master, addrBr, addrUp},
			[]Entry{addrUp, br, addrBr, master, fwd}},
		{"two links made", []Entry{br, master, {Kind: KindLinkCreated, Link: "vx0"}, addrUp},
			[]Entry{addrUp, {Kind: KindLinkCreated, Link: "vx0"}, master, br}},
		{"no bridge made", []Entry{master, promisc}, []Entry{promisc, master}},
		{"the bridge alone", []Entry{br}, []Entry{br}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := reversed(linkDeleteEarly(tt.lane))
			if !slices.Equal(got, tt.undoOrder) {
				t.Fatalf("undo order:\n got %v\nwant %v", got, tt.undoOrder)
			}
		})
	}
}
