package doctor

import (
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/testenv"
)

func readTestdata(t testing.TB, name string) string {
	return string(testenv.ReadFile(t, "testdata", name))
}

// hdr is the kernel's header line of /proc/net/udp.
const hdr = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n"

func TestParseProcNetSockets(t *testing.T) {
	ap := netip.MustParseAddrPort
	tests := []struct {
		name    string
		proto   string
		in      string
		want    []Socket
		wantErr string
	}{
		{"recorded udp: dnsmasq's DNS and two DHCP sockets", "udp", readTestdata(t, "proc-net-udp-recorded-sim-dom0-rogue.txt"), []Socket{
			{Proto: "udp", Local: ap("192.168.77.2:53"), State: 7, Inode: 881697},
			{Proto: "udp", Local: ap("0.0.0.0:67"), State: 7, Inode: 880925},
			{Proto: "udp", Local: ap("0.0.0.0:67"), State: 7, Inode: 880808},
		}, ""},
		{"recorded tcp: a listener and two TIME_WAITs", "tcp", readTestdata(t, "proc-net-tcp-recorded-sim-dom0.txt"), []Socket{
			{Proto: "tcp", Local: ap("192.168.77.2:53"), State: 0x0A, Inode: 881698},
			{Proto: "tcp", Local: ap("192.168.77.2:42142"), State: 6, Inode: 0},
			{Proto: "tcp", Local: ap("192.168.77.2:42150"), State: 6, Inode: 0},
		}, ""},
		{"header only", "udp", "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n", nil, ""},
		{"empty", "tcp", "", nil, ""},
		{"short line", "udp", hdr + " 1: 0100007F:0035 00000000:0000 07\n", nil, "line 2: 4 fields"},
		{"address without port", "udp", hdr + " 1: 0100007F 00000000:0000 07 0:0 0:0 0 0 0 12 2 0 0\n", nil, "not ADDR:PORT"},
		{"bad address", "udp", hdr + " 1: 0100ZZ7F:0035 00000000:0000 07 0:0 0:0 0 0 0 12 2 0 0\n", nil, "local address"},
		{"IPv6 address in the v4 table", "tcp", hdr + " 1: 00000000000000000000000001000000:0035 0:0 0A 0:0 0:0 0 0 0 12 2 0 0\n", nil, "not 8 hex digits"},
		{"bad port", "udp", hdr + " 1: 0100007F:35 00000000:0000 07 0:0 0:0 0 0 0 12 2 0 0\n", nil, "not 4 hex digits"},
		{"bad state", "udp", hdr + " 1: 0100007F:0035 00000000:0000 XY 0:0 0:0 0 0 0 12 2 0 0\n", nil, "state"},
		{"bad inode", "udp", hdr + " 1: 0100007F:0035 00000000:0000 07 0:0 0:0 0 0 0 -1 2 0 0\n", nil, "inode"},
		{"unknown protocol", "raw", "", nil, "unknown protocol"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcNetSockets(tt.proto, tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestSocketServing(t *testing.T) {
	tests := []struct {
		s    Socket
		want bool
	}{
		{Socket{Proto: "udp", State: 7}, true},
		{Socket{Proto: "udp", State: 1}, false}, // a connected UDP socket
		{Socket{Proto: "tcp", State: 0x0A}, true},
		{Socket{Proto: "tcp", State: 1}, false}, // ESTABLISHED
	}
	for _, tt := range tests {
		if got := tt.s.Serving(); got != tt.want {
			t.Errorf("%+v.Serving() = %v, want %v", tt.s, got, tt.want)
		}
	}
}

func FuzzParseProcNetSockets(f *testing.F) {
	f.Add("udp", readTestdata(f, "proc-net-udp-recorded-sim-dom0-rogue.txt"))
	f.Add("tcp", readTestdata(f, "proc-net-tcp-recorded-sim-dom0.txt"))
	f.Add("udp", hdr+" 1: 0100007F:0035 00000000:0000 07 0:0 0:0 0 0 0 12 2 0 0\n")
	f.Fuzz(func(t *testing.T, proto, in string) {
		ss, err := ParseProcNetSockets(proto, in)
		if err != nil {
			return
		}
		for _, s := range ss {
			if !s.Local.Addr().Is4() || s.Proto != proto {
				t.Fatalf("parsed %+v from %q", s, in)
			}
		}
	})
}

// fakeProc builds a /proc-like tree: pid -> (comm, cmdline, socket inodes).
func fakeProc(t *testing.T, procs map[int]Proc, fds map[int][]string) string {
	t.Helper()
	root := t.TempDir()
	for pid, p := range procs {
		dir := filepath.Join(root, strconv.Itoa(pid))
		if err := os.MkdirAll(filepath.Join(dir, "fd"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, "comm"), []byte(p.Comm+"\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "cmdline"), []byte(strings.ReplaceAll(p.Cmdline, " ", "\x00")+"\x00"), 0o644)
		for i, target := range fds[pid] {
			if err := os.Symlink(target, filepath.Join(dir, "fd", strconv.Itoa(i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Not processes: ignored.
	os.MkdirAll(filepath.Join(root, "net"), 0o755)
	os.WriteFile(filepath.Join(root, "uptime"), []byte("1 1\n"), 0o644)
	return root
}

func TestSocketOwners(t *testing.T) {
	root := fakeProc(t, map[int]Proc{
		100: {Comm: "dnsmasq", Cmdline: "dnsmasq --conf-file=/var/lib/labctl/mirage/dnsmasq/dnsmasq.conf"},
		200: {Comm: "dnsmasq", Cmdline: "/usr/sbin/dnsmasq -x /run/dnsmasq/dnsmasq.pid"},
		300: {Comm: "bash", Cmdline: "bash"},
	}, map[int][]string{
		100: {"/dev/null", "socket:[880808]", "socket:[881697]", "pipe:[5]"},
		200: {"socket:[880925]", "socket:[880925]"}, // dup'ed: counted once
		300: {"/dev/pts/0", "socket:[880808]"},      // inherited by a child
	})
	got, err := SocketOwners(root, []uint64{880808, 880925, 881697, 999})
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint64][]int{880808: {100, 300}, 880925: {200}, 881697: {100}}
	if len(got) != len(want) {
		t.Fatalf("owners %+v, want inodes %v", got, want)
	}
	for ino, pids := range want {
		var have []int
		for _, p := range got[ino] {
			have = append(have, p.Pid)
		}
		if !reflect.DeepEqual(have, pids) {
			t.Errorf("inode %d: pids %v, want %v", ino, have, pids)
		}
	}
	if p := got[880925][0]; p.Comm != "dnsmasq" || p.Cmdline != "/usr/sbin/dnsmasq -x /run/dnsmasq/dnsmasq.pid" {
		t.Errorf("owner %+v: comm/cmdline not read", p)
	}
	if _, err := SocketOwners(filepath.Join(root, "missing"), nil); err == nil {
		t.Error("a missing proc root is not an error")
	}
}

func TestFindProcs(t *testing.T) {
	root := fakeProc(t, map[int]Proc{
		10: {Comm: "firewalld", Cmdline: "/usr/bin/python3 /usr/sbin/firewalld --nofork"},
		11: {Comm: "firewalld-helper", Cmdline: "x"},
		12: {Comm: "sshd", Cmdline: "sshd"},
	}, nil)
	got, err := FindProcs(root, "firewalld")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].Pid != 10 || !strings.Contains(got[0].Cmdline, "--nofork") {
		t.Fatalf("FindProcs = %+v", got)
	}
}
