package netsetup

import (
	"encoding/binary"
	"errors"
	"os/exec"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/labctl/labctl/internal/testenv"
)

// The generation is what lets a converged run skip iptables-save: it must
// stay put while nothing commits (iptables-save included) and move on any
// rule change, and two namespaces must never share a key.
func TestNFTGeneration(t *testing.T) {
	name, _ := newNamedNS(t)
	other, _ := newNamedNS(t)
	testenv.RequireTool(t, "iptables")
	gen := func(ns string) Generation {
		t.Helper()
		var g Generation
		if err := inNamedNS(ns, func() (err error) { g, err = NFTGeneration(); return err }); err != nil {
			t.Fatal(err)
		}
		return g
	}
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", append([]string{"netns", "exec", name}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", args, err, out)
		}
	}
	g1 := gen(name)
	if g1.Netns == 0 {
		t.Fatalf("generation %+v: no namespace cookie", g1)
	}
	if again := gen(name); again != g1 {
		t.Fatalf("asking twice: %+v then %+v", g1, again)
	}
	run("iptables-save")
	if after := gen(name); after != g1 {
		t.Fatalf("iptables-save moved the generation: %+v then %+v", g1, after)
	}
	run("iptables", "-t", "nat", "-N", "TESTCHAIN")
	g2 := gen(name)
	if g2.ID == g1.ID || g2.Netns != g1.Netns {
		t.Fatalf("after a new chain: %+v, before %+v: want the same namespace, another id", g2, g1)
	}
	run("iptables", "-t", "nat", "-A", "TESTCHAIN", "-j", "RETURN")
	if g3 := gen(name); g3.ID == g2.ID {
		t.Fatalf("a rule added left the generation at %d", g3.ID)
	}
	if o := gen(other); o.Netns == g1.Netns {
		t.Fatalf("two namespaces share the cookie %d", o.Netns)
	}
}

// genMessage is a netlink message of type typ carrying payload.
func genMessage(typ uint16, payload []byte) []byte {
	b := make([]byte, unix.NLMSG_HDRLEN+len(payload))
	binary.NativeEndian.PutUint32(b[0:], uint32(len(b)))
	binary.NativeEndian.PutUint16(b[4:], typ)
	copy(b[unix.NLMSG_HDRLEN:], payload)
	return b
}

func genAttr(typ uint16, v []byte) []byte {
	a := make([]byte, (unix.SizeofNlAttr+len(v)+3)&^3)
	binary.NativeEndian.PutUint16(a[0:], uint16(unix.SizeofNlAttr+len(v)))
	binary.NativeEndian.PutUint16(a[2:], typ)
	copy(a[unix.SizeofNlAttr:], v)
	return a
}

func TestParseGenAnswer(t *testing.T) {
	newgen := uint16(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWGEN)
	id := binary.BigEndian.AppendUint32(nil, 4711)
	pid := binary.BigEndian.AppendUint32(nil, 99)
	nfgen := []byte{0, 0, 0x12, 0x67}
	errMsg := func(errno int32) []byte {
		return genMessage(unix.NLMSG_ERROR, binary.NativeEndian.AppendUint32(nil, uint32(-errno)))
	}
	tests := []struct {
		name    string
		b       []byte
		want    uint32
		wantErr error // nil: any error when wantOK is false
		wantOK  bool
	}{
		{"id first", genMessage(newgen, append(append(nfgen, genAttr(unix.NFTA_GEN_ID, id)...), genAttr(unix.NFTA_GEN_PROC_PID, pid)...)), 4711, nil, true},
		{"id after pid and name", genMessage(newgen, append(append(append(nfgen, genAttr(unix.NFTA_GEN_PROC_PID, pid)...), genAttr(unix.NFTA_GEN_PROC_NAME, []byte("nft\x00"))...), genAttr(unix.NFTA_GEN_ID, id)...)), 4711, nil, true},
		{"kernel error", errMsg(int32(unix.EPERM)), 0, unix.EPERM, false},
		{"no id", genMessage(newgen, append(nfgen, genAttr(unix.NFTA_GEN_PROC_PID, pid)...)), 0, nil, false},
		{"short id", genMessage(newgen, append(nfgen, genAttr(unix.NFTA_GEN_ID, []byte{1, 2})...)), 0, nil, false},
		{"no nfgenmsg", genMessage(newgen, []byte{0, 0}), 0, nil, false},
		{"another message", genMessage(unix.NLMSG_DONE, []byte{0, 0, 0, 0}), 0, nil, false},
		{"truncated", genMessage(newgen, append(nfgen, genAttr(unix.NFTA_GEN_ID, id)...))[:10], 0, nil, false},
		{"empty", nil, 0, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGenAnswer(tt.b)
			if tt.wantOK {
				if err != nil || got != tt.want {
					t.Fatalf("ParseGenAnswer = %d, %v; want %d", got, err, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseGenAnswer = %d, want an error", got)
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("ParseGenAnswer error %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func FuzzParseGenAnswer(f *testing.F) {
	newgen := uint16(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWGEN)
	f.Add(genMessage(newgen, append([]byte{0, 0, 0, 1}, genAttr(unix.NFTA_GEN_ID, []byte{0, 0, 0, 7})...)))
	f.Add(genMessage(unix.NLMSG_ERROR, []byte{0xff, 0xff, 0xff, 0xff}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseGenAnswer(b) // must not panic, whatever the bytes
	})
}
