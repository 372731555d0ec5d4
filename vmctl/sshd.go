package vmctl

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/labctl/labctl/internal/procs"
)

// SimSSHD is a real OpenSSH server inside the simulated lab's dom0
// namespace: what `vagrant up` gives a real VM, so that labctl's SSH
// target is exercised end to end. Its host key, the client identity
// allowed to log in as root, the known_hosts for that host key, its
// config, pidfile and log all live in Dir (0700, files 0600).
type SimSSHD struct {
	Netns string     // <lab>-dom0
	Addr  netip.Addr // dom0's lab address (192.168.77.2)
	Port  int        // 22 when 0
	Dir   string     // <state>/<lab>/ssh
	Log   *slog.Logger
}

// Files in Dir.
func (s SimSSHD) HostKeyPath() string        { return filepath.Join(s.Dir, "ssh_host_ed25519_key") }
func (s SimSSHD) IdentityPath() string       { return filepath.Join(s.Dir, "id_ed25519") }
func (s SimSSHD) AuthorizedKeysPath() string { return filepath.Join(s.Dir, "authorized_keys") }
func (s SimSSHD) KnownHostsPath() string     { return filepath.Join(s.Dir, "known_hosts") }
func (s SimSSHD) ConfigPath() string         { return filepath.Join(s.Dir, "sshd_config") }
func (s SimSSHD) PidPath() string            { return filepath.Join(s.Dir, "sshd.pid") }
func (s SimSSHD) LogPath() string            { return filepath.Join(s.Dir, "sshd.log") }

func (s SimSSHD) port() int {
	if s.Port == 0 {
		return 22
	}
	return s.Port
}

// HostPort is the server's address, "192.168.77.2:22".
func (s SimSSHD) HostPort() string {
	return net.JoinHostPort(s.Addr.String(), strconv.Itoa(s.port()))
}

// Target is the labctl --target for it: ssh://root@192.168.77.2.
func (s SimSSHD) Target() string {
	u := url.URL{Scheme: "ssh", User: url.User("root"), Host: s.Addr.String()}
	if s.port() != 22 {
		u.Host = s.HostPort()
	}
	return u.String()
}

// SSHDBinary finds sshd: root's PATH under sudo may lack /usr/sbin.
func SSHDBinary() (string, error) {
	if p, err := exec.LookPath("sshd"); err == nil {
		return filepath.Abs(p)
	}
	for _, p := range []string{"/usr/sbin/sshd", "/usr/local/sbin/sshd"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("sshd not found: install OpenSSH's server (Debian: apt-get install openssh-server)")
}

// config is the server's sshd_config: its own, so the machine's
// /etc/ssh/sshd_config (and PAM) play no part.
func (s SimSSHD) config() []byte {
	lines := []string{
		"# Written by labctl sim up --sshd: dom0's SSH server in the simulated lab.",
		"ListenAddress " + s.HostPort(),
		"AddressFamily inet",
		"HostKey " + s.HostKeyPath(),
		"PidFile " + s.PidPath(),
		"AuthorizedKeysFile " + s.AuthorizedKeysPath(),
		"UsePAM no",
		"PermitRootLogin prohibit-password",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		// The state directory may sit below a world-writable directory
		// (/tmp in tests), which StrictModes rejects; the key files
		// themselves are 0600 in a 0700 directory owned by root.
		"StrictModes no",
		"AllowTcpForwarding no",
		"AllowAgentForwarding no",
		"X11Forwarding no",
		"PermitTunnel no",
		"PrintMotd no",
		// VERBOSE logs each accepted key: one line per connection.
		"LogLevel VERBOSE",
		// The sim's dom0 logs in as this machine's root, whose ~/.bashrc
		// is the developer's, not a dom0's: Debian's bash reads it for
		// commands from sshd (SSH_SOURCE_BASHRC) only at shell level 1,
		// so SHLVL=1 keeps it out. One seen here ran `pyenv init`, whose
		// stale rehash lock made every command wait 60 s.
		"SetEnv SHLVL=1",
		"",
	}
	return []byte(strings.Join(lines, "\n"))
}

// Up generates the keys if missing, writes the config, known_hosts and
// authorized_keys, and starts sshd in the namespace unless it already
// runs with this config. It returns sshd's pid.
func (s SimSSHD) Up(ctx context.Context) (int, error) {
	log := s.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if !s.Addr.Is4() {
		return 0, fmt.Errorf("sim sshd: address %v is not IPv4", s.Addr)
	}
	bin, err := SSHDBinary()
	if err != nil {
		return 0, err
	}
	if err := s.setupKeys(); err != nil {
		return 0, err
	}
	conf := s.config()
	if pid, err := s.reuseRunning(ctx, log, conf); pid > 0 || err != nil {
		return pid, err
	}
	if err := writeSecret(s.ConfigPath(), conf); err != nil {
		return 0, err
	}
	// sshd refuses to start without its privilege separation directory,
	// which the openssh-server service normally creates.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		return 0, fmt.Errorf("sim sshd: %w", err)
	}
	os.Remove(s.PidPath())
	cmd, exited, err := s.startSSHD(bin)
	if err != nil {
		return 0, err
	}
	return s.awaitListening(ctx, log, cmd, exited)
}

// setupKeys creates the state directory, generates the host and client
// keys if missing, and writes authorized_keys and known_hosts.
func (s SimSSHD) setupKeys() error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("sim sshd directory %s: %w", s.Dir, err)
	}
	if err := os.Chmod(s.Dir, 0o700); err != nil {
		return fmt.Errorf("sim sshd directory %s: %w", s.Dir, err)
	}
	hostPub, err := ensureKey(s.HostKeyPath(), "labctl sim dom0 host key")
	if err != nil {
		return err
	}
	clientPub, err := ensureKey(s.IdentityPath(), "labctl sim client")
	if err != nil {
		return err
	}
	if err := writeSecret(s.AuthorizedKeysPath(), ssh.MarshalAuthorizedKey(clientPub)); err != nil {
		return err
	}
	kh := knownhosts.Line([]string{knownhosts.Normalize(s.HostPort())}, hostPub) + "\n"
	return writeSecret(s.KnownHostsPath(), []byte(kh))
}

// reuseRunning returns the running sshd's pid when it already runs with
// conf. A server running with another config is stopped, and 0 returned
// so that Up starts a new one.
func (s SimSSHD) reuseRunning(ctx context.Context, log *slog.Logger, conf []byte) (int, error) {
	old, _ := os.ReadFile(s.ConfigPath())
	pid := s.Pid()
	if pid <= 0 {
		return 0, nil
	}
	if bytes.Equal(old, conf) {
		log.Debug("sim sshd already running", "pid", pid, "netns", s.Netns)
		return pid, nil
	}
	return 0, s.stop(ctx, pid)
}

// startSSHD starts sshd in the namespace. The channel receives cmd.Wait's
// result when sshd exits.
func (s SimSSHD) startSSHD(bin string) (*exec.Cmd, <-chan error, error) {
	// -D: no fork, so labctl sees an early exit; -E: sshd's own log file.
	cmd := exec.Command(bin, "-D", "-f", s.ConfigPath(), "-E", s.LogPath())
	// Its own session: it outlives labctl, like the VM's sshd outlives
	// vagrant up.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := (Netns{Name: s.Netns}).Start(cmd); err != nil {
		return nil, nil, fmt.Errorf("sim sshd: starting %s in %s: %w", bin, s.Netns, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	return cmd, exited, nil
}

// awaitListening waits up to 10s for the started sshd to write its
// pidfile and returns its pid. It kills sshd on timeout or when ctx ends.
func (s SimSSHD) awaitListening(ctx context.Context, log *slog.Logger, cmd *exec.Cmd, exited <-chan error) (int, error) {
	// sshd writes its pidfile once it listens.
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	for {
		if pid := s.Pid(); pid == cmd.Process.Pid {
			log.Info("sim sshd started", "netns", s.Netns, "listen", s.HostPort(), "pid", pid)
			return pid, nil
		}
		select {
		case err := <-exited:
			return 0, fmt.Errorf("sim sshd in %s exited (%v): %s", s.Netns, err, s.logTail())
		case <-deadline.C:
			cmd.Process.Kill()
			return 0, fmt.Errorf("sim sshd in %s did not start listening on %s within 10s: %s", s.Netns, s.HostPort(), s.logTail())
		case <-ctx.Done():
			cmd.Process.Kill()
			return 0, fmt.Errorf("sim sshd: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Pid is the running server's pid, 0 when none: the pidfile's process,
// alive, in the namespace, with this config on its command line (sshd
// rewrites its title but keeps the arguments in it).
func (s SimSSHD) Pid() int {
	pid := procs.ReadPidfile(s.PidPath())
	if !procs.Alive(pid) {
		return 0
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !bytes.Contains(cmd, []byte(s.ConfigPath())) {
		return 0
	}
	pids, err := NetnsPids(s.Netns)
	if err != nil {
		return 0
	}
	for _, p := range pids {
		if p == pid {
			return pid
		}
	}
	return 0
}

// stop ends the server (and with it the sessions it forked).
func (s SimSSHD) stop(ctx context.Context, pid int) error {
	syscall.Kill(pid, syscall.SIGTERM)
	deadline := time.Now().Add(3 * time.Second)
	for s.Pid() == pid {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(time.Hour)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopping sim sshd %d: %w", pid, ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

func (s SimSSHD) logTail() string {
	b, _ := os.ReadFile(s.LogPath())
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	if len(b) == 0 {
		return "(no log)"
	}
	return strings.TrimSpace(string(b))
}

// ensureKey loads the ed25519 private key at path, generating it (0600)
// when missing, and returns its public half.
func ensureKey(path, comment string) (ssh.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := ssh.ParsePrivateKey(b)
		if err != nil {
			return nil, fmt.Errorf("key %s: %w", path, err)
		}
		return k.PublicKey(), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("key %s: %w", path, err)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generating %s: %w", path, err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, comment)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", path, err)
	}
	if err := writeSecret(path, pem.EncodeToMemory(blk)); err != nil {
		return nil, err
	}
	if err := writeSecret(path+".pub", ssh.MarshalAuthorizedKey(mustPub(pub))); err != nil {
		return nil, err
	}
	return ssh.NewPublicKey(pub)
}

func mustPub(pub ed25519.PublicKey) ssh.PublicKey {
	p, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err) // an ed25519 key always converts
	}
	return p
}

// writeSecret writes a 0600 file atomically (temporary file, rename).
func writeSecret(path string, data []byte) error {
	return procs.WriteFileAtomic(path, data, 0o600)
}
