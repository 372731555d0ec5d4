package sshx

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/labctl/labctl/internal/testenv"
)

// sshd is a real OpenSSH server on 127.0.0.1, owned by one test.
type sshd struct {
	t       *testing.T
	bin     string
	dir     string
	port    int
	hostKey ssh.Signer
	cmd     *exec.Cmd
	log     *testenv.SyncBuffer
	stopped bool
}

// client is the key the tests log in with.
type client struct {
	keyPath string
	pub     ssh.PublicKey
}

func sshdBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("sshd"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/sshd"); err == nil {
		return "/usr/sbin/sshd" // root's PATH may lack sbin under sudo -E
	}
	testenv.RequireTool(t, "sshd")
	return ""
}

// newClient writes a fresh ed25519 identity (0600 in a 0700 directory).
func newClient(t *testing.T) client {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "labctl-test")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "id_ed25519")
	if err := os.WriteFile(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return client{keyPath: path, pub: sp}
}

func newHostKey(t *testing.T) (ed25519.PrivateKey, ssh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return priv, s
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startSSHD runs sshd -D -e with its own config, host key and
// authorized_keys, all in a temporary directory; port 0 picks a free one.
// It is killed (with every process of its group) in t.Cleanup.
func startSSHD(t *testing.T, c client, port int) *sshd {
	t.Helper()
	testenv.RequireRoot(t)
	bin := sshdBinary(t)
	// Privilege separation directory; the openssh-server unit normally
	// creates it. Left in place: another sshd may be using it.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("create /run/sshd: %v", err)
	}
	priv, signer := newHostKey(t)
	dir := t.TempDir()
	blk, err := ssh.MarshalPrivateKey(priv, "labctl-test-host")
	if err != nil {
		t.Fatal(err)
	}
	hostKeyPath := filepath.Join(dir, "ssh_host_ed25519_key")
	if err := os.WriteFile(hostKeyPath, pem.EncodeToMemory(blk), 0o600); err != nil {
		t.Fatal(err)
	}
	ak := filepath.Join(dir, "authorized_keys")
	if err := os.WriteFile(ak, ssh.MarshalAuthorizedKey(c.pub), 0o600); err != nil {
		t.Fatal(err)
	}
	var s *sshd
	for attempt := 0; attempt < 5; attempt++ {
		p := port
		if p == 0 {
			p = freePort(t)
		}
		s = &sshd{t: t, bin: bin, dir: dir, port: p, hostKey: signer, log: &testenv.SyncBuffer{}}
		if s.start(hostKeyPath, ak) {
			return s
		}
		if port != 0 {
			break
		}
	}
	t.Fatalf("sshd did not start:\n%s", s.log)
	return nil
}

func (s *sshd) start(hostKeyPath, ak string) bool {
	t := s.t
	cfg := filepath.Join(s.dir, fmt.Sprintf("sshd_config.%d", s.port))
	conf := strings.Join([]string{
		fmt.Sprintf("Port %d", s.port),
		"ListenAddress 127.0.0.1",
		"AddressFamily inet",
		"HostKey " + hostKeyPath,
		"PidFile none",
		"AuthorizedKeysFile " + ak,
		"UsePAM no",
		"StrictModes no",
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"AllowTcpForwarding no",
		"X11Forwarding no",
		"PrintMotd no",
		"LogLevel VERBOSE",
		// Not the developer's ~/.bashrc: see vmctl.SimSSHD's config.
		"SetEnv SHLVL=1",
		"",
	}, "\n")
	if err := os.WriteFile(cfg, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(s.bin, "-D", "-e", "-f", cfg)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sshd: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		s.kill()
		<-exited
		if t.Failed() {
			t.Logf("sshd :%d log:\n%s", s.port, s.log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return false
		default:
		}
		if banner(s.port) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// kill ends sshd and the per-connection processes it forked (they call
// setsid, so they are not in its process group: found through /proc).
func (s *sshd) kill() {
	if s.stopped || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.stopped = true
	pids := append(descendants(s.cmd.Process.Pid), s.cmd.Process.Pid)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGCONT)
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
}

// signalConnections sends sig to the per-connection sshd processes: stop
// and continue fake a network outage, since while stopped they neither
// read nor answer anything, and TCP just queues.
func (s *sshd) signalConnections(sig syscall.Signal) {
	s.t.Helper()
	n := 0
	for _, pid := range descendants(s.cmd.Process.Pid) {
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || !strings.HasPrefix(string(comm), "sshd") {
			continue // the user's commands run on
		}
		if err := syscall.Kill(pid, sig); err == nil {
			n++
		}
	}
	if n == 0 {
		s.t.Fatalf("no sshd connection process to signal")
	}
}

// descendants lists the live descendants of pid from /proc/*/stat.
func descendants(pid int) []int {
	children := map[int][]int{}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces and parens.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		var state byte
		var ppid int
		if _, err := fmt.Sscanf(string(b[i+1:]), " %c %d", &state, &ppid); err != nil {
			continue
		}
		var self int
		if _, err := fmt.Sscanf(string(b), "%d", &self); err != nil {
			continue
		}
		children[ppid] = append(children[ppid], self)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			out = append(out, c)
			queue = append(queue, c)
		}
	}
	return out
}

func banner(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	b := make([]byte, 8)
	n, _ := c.Read(b)
	return strings.HasPrefix(string(b[:n]), "SSH-2.0-")
}

func (s *sshd) target() string { return fmt.Sprintf("ssh://root@127.0.0.1:%d", s.port) }
