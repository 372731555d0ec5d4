package doctor

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Socket is one line of /proc/net/udp or /proc/net/tcp.
type Socket struct {
	Proto string // "udp" or "tcp"
	Local netip.AddrPort
	State int // kernel TCP state: 0x0A LISTEN; unconnected UDP sockets show 0x07
	Inode uint64
}

// TCP/UDP states of /proc/net/{tcp,udp} that mean "accepts new peers".
const (
	stateListen = 0x0A // TCP_LISTEN
	stateClose  = 0x07 // TCP_CLOSE: an unconnected (serving) UDP socket
)

// Serving reports whether the socket accepts traffic from any peer: a
// listening TCP socket or an unconnected UDP one.
func (s Socket) Serving() bool {
	if s.Proto == "tcp" {
		return s.State == stateListen
	}
	return s.State == stateClose
}

// ParseProcNetSockets parses /proc/net/udp or /proc/net/tcp (IPv4) for
// proto "udp" or "tcp". Addresses are in host byte order (little-endian on
// the hosts labctl runs on), ports big-endian, both hex.
func ParseProcNetSockets(proto, content string) ([]Socket, error) {
	if proto != "udp" && proto != "tcp" {
		return nil, fmt.Errorf("socket table: unknown protocol %q", proto)
	}
	var out []Socket
	for i, line := range strings.Split(content, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || i == 0 && f[0] == "sl" {
			continue
		}
		if len(f) < 10 {
			return nil, fmt.Errorf("/proc/net/%s line %d: %d fields, want at least 10", proto, i+1, len(f))
		}
		host, port, ok := strings.Cut(f[1], ":")
		if !ok {
			return nil, fmt.Errorf("/proc/net/%s line %d: local address %q is not ADDR:PORT", proto, i+1, f[1])
		}
		addr, err := hexAddr(host)
		if err != nil {
			return nil, fmt.Errorf("/proc/net/%s line %d local address: %w", proto, i+1, err)
		}
		p, err := strconv.ParseUint(port, 16, 16)
		if err != nil || len(port) != 4 {
			return nil, fmt.Errorf("/proc/net/%s line %d: port %q is not 4 hex digits", proto, i+1, port)
		}
		st, err := strconv.ParseUint(f[3], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("/proc/net/%s line %d: state %q: %w", proto, i+1, f[3], err)
		}
		inode, err := strconv.ParseUint(f[9], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("/proc/net/%s line %d: inode %q: %w", proto, i+1, f[9], err)
		}
		out = append(out, Socket{Proto: proto, Local: netip.AddrPortFrom(addr, uint16(p)), State: int(st), Inode: inode})
	}
	return out, nil
}

// Proc is a process that holds a socket.
type Proc struct {
	Pid     int    `json:"pid"`
	Comm    string `json:"comm"`
	Cmdline string `json:"cmdline"` // NULs as spaces
}

// SocketOwners maps socket inodes to the processes holding them, from
// procRoot/<pid>/fd/* ("socket:[inode]" links). Every process is looked
// at, not just those of one network namespace: a socket belongs to the
// namespace it was created in, and its holder may have moved on since.
// Unreadable processes (gone, or not ours to read) are skipped.
func SocketOwners(procRoot string, inodes []uint64) (map[uint64][]Proc, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("socket owners: %w", err)
	}
	out := map[uint64][]Proc{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		fds, err := os.ReadDir(filepath.Join(procRoot, e.Name(), "fd"))
		if err != nil {
			continue
		}
		var held []uint64
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(procRoot, e.Name(), "fd", fd.Name()))
			if err != nil {
				continue
			}
			ino, ok := socketInode(link)
			if ok && slices.Contains(inodes, ino) && !slices.Contains(held, ino) {
				held = append(held, ino)
			}
		}
		if len(held) == 0 {
			continue
		}
		p := readProc(procRoot, pid)
		for _, ino := range held {
			out[ino] = append(out[ino], p)
		}
	}
	return out, nil
}

func socketInode(link string) (uint64, bool) {
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

func readProc(procRoot string, pid int) Proc {
	p := Proc{Pid: pid}
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	if b, err := os.ReadFile(filepath.Join(dir, "comm")); err == nil {
		p.Comm = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile(filepath.Join(dir, "cmdline")); err == nil {
		p.Cmdline = strings.TrimSpace(string(bytes.ReplaceAll(bytes.TrimRight(b, "\x00"), []byte{0}, []byte{' '})))
	}
	return p
}

// FindProcs lists the processes under procRoot whose comm is one of names.
func FindProcs(procRoot string, names ...string) ([]Proc, error) {
	ents, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	var out []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		b, err := os.ReadFile(filepath.Join(procRoot, e.Name(), "comm"))
		if errors.Is(err, fs.ErrNotExist) || err != nil {
			continue
		}
		if slices.Contains(names, strings.TrimSpace(string(b))) {
			out = append(out, readProc(procRoot, pid))
		}
	}
	return out, nil
}
