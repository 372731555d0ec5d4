// Package sshx is the SSH Transport: it runs commands on dom0 over SSH with
// golang.org/x/crypto/ssh, verifying the host key against a known_hosts
// file. A first contact is refused unless AcceptNewHostKey is set (then the
// key is recorded); a changed key is always refused and nothing runs.
package sshx

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/agent"

	"github.com/labctl/labctl/vmctl"
)

// Config describes one SSH target.
type Config struct {
	// Target is ssh://USER@HOST[:PORT]; HOST may be a bracketed IPv6 address.
	Target string
	// IdentityFiles are private keys (OpenSSH/PEM, unencrypted). At least
	// one of IdentityFiles and AgentSocket is needed.
	IdentityFiles []string
	// AgentSocket is an ssh-agent socket (the caller passes $SSH_AUTH_SOCK
	// if it wants the agent's keys offered too).
	AgentSocket string
	// KnownHostsFile is checked for the host key; required.
	KnownHostsFile string
	// AcceptNewHostKey records the key of a host not yet in
	// KnownHostsFile instead of refusing it. A changed key is refused anyway.
	AcceptNewHostKey bool
	// Sudo runs every command, and Put, through `sudo -n` on the target.
	Sudo bool
	// ConnectTimeout bounds TCP connect plus SSH handshake (default 15s).
	ConnectTimeout time.Duration
	// KeepAliveInterval between keepalive@openssh.com requests (default
	// 15s; negative disables). The connection is closed after
	// KeepAliveMax (default 4) intervals without an answer, so a brief
	// network hiccup (an address moving from eth1 to br0) is ridden out
	// by TCP while a dead peer is noticed in about a minute.
	KeepAliveInterval time.Duration
	KeepAliveMax      int
	Logger            *slog.Logger
}

// Transport implements vmctl.Transport over one SSH connection, dialled on
// first use (or by Connect) and never silently re-dialled.
type Transport struct {
	cfg     Config
	user    string
	addr    string // host:port
	signers []ssh.Signer
	log     *slog.Logger

	mu     sync.Mutex
	client *ssh.Client
	ctl    *canceller // stops canceled runs; opened with the connection
	closed bool
	// lost is set (to an error) by keepalive when it gave up on the
	// connection; atomic because Close holds mu while waiting for keepalive.
	lost   atomic.Value
	stopKA chan struct{}
	kaDone chan struct{}
}

var _ vmctl.Transport = (*Transport)(nil)

// ParseTarget splits ssh://USER@HOST[:PORT] into user and host:port.
func ParseTarget(target string) (user, hostport string, err error) {
	u, err := url.Parse(target)
	if err != nil {
		return "", "", fmt.Errorf("ssh target %q: %w", target, err)
	}
	if u.Scheme != "ssh" {
		return "", "", fmt.Errorf("ssh target %q: want ssh://USER@HOST[:PORT]", target)
	}
	if u.User == nil || u.User.Username() == "" {
		return "", "", fmt.Errorf("ssh target %q: no user (want ssh://USER@HOST[:PORT])", target)
	}
	if _, has := u.User.Password(); has {
		return "", "", fmt.Errorf("ssh target %q: passwords are not accepted in the target; use an identity file", target)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("ssh target %q: unexpected path, query or fragment", target)
	}
	host := u.Hostname()
	if host == "" {
		return "", "", fmt.Errorf("ssh target %q: no host", target)
	}
	port := 22
	if p := u.Port(); p != "" {
		port, err = strconv.Atoi(p)
		if err != nil || port < 1 || port > 65535 {
			return "", "", fmt.Errorf("ssh target %q: bad port %q", target, p)
		}
	}
	return u.User.Username(), net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// New checks cfg and loads the identity files; it does not connect.
func New(cfg Config) (*Transport, error) {
	user, addr, err := ParseTarget(cfg.Target)
	if err != nil {
		return nil, err
	}
	if cfg.KnownHostsFile == "" {
		return nil, fmt.Errorf("ssh target %s: a known_hosts file is required (host keys are always verified)", cfg.Target)
	}
	if len(cfg.IdentityFiles) == 0 && cfg.AgentSocket == "" {
		return nil, fmt.Errorf("ssh target %s: no identity file and no agent", cfg.Target)
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = 15 * time.Second
	}
	if cfg.KeepAliveInterval == 0 {
		cfg.KeepAliveInterval = 15 * time.Second
	}
	if cfg.KeepAliveMax <= 0 {
		cfg.KeepAliveMax = 4
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Transport{cfg: cfg, user: user, addr: addr, log: log.With("target", "ssh "+user+"@"+addr)}
	for _, path := range cfg.IdentityFiles {
		s, err := loadSigner(path)
		if err != nil {
			return nil, err
		}
		t.signers = append(t.signers, s)
	}
	return t, nil
}

func loadSigner(path string) (ssh.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read identity file %s: %w", path, err)
	}
	s, err := ssh.ParsePrivateKey(b)
	var pp *ssh.PassphraseMissingError
	if errors.As(err, &pp) {
		return nil, fmt.Errorf("identity file %s is passphrase-protected: load it into ssh-agent and use the agent instead: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("parse identity file %s: %w", path, err)
	}
	return s, nil
}

// String names the target: "ssh root@127.0.0.1:2222".
func (t *Transport) String() string { return "ssh " + t.user + "@" + t.addr }

// Connect dials now instead of on first use.
func (t *Transport) Connect(ctx context.Context) error {
	_, err := t.conn(ctx)
	return err
}

func (t *Transport) conn(ctx context.Context) (*ssh.Client, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil, fmt.Errorf("%s: transport closed", t)
	}
	if v := t.lost.Load(); v != nil {
		return nil, fmt.Errorf("%s: connection lost (not redialled): %w", t, v.(error))
	}
	if t.client != nil {
		return t.client, nil
	}
	c, err := t.dial(ctx)
	if err != nil {
		return nil, err
	}
	t.client = c
	t.ctl = t.openCanceller(c)
	if t.cfg.KeepAliveInterval > 0 {
		t.stopKA, t.kaDone = make(chan struct{}), make(chan struct{})
		go t.keepalive(c, t.stopKA, t.kaDone)
	}
	return c, nil
}

func (t *Transport) dial(ctx context.Context) (*ssh.Client, error) {
	hk, err := newHostKeys(t.cfg.KnownHostsFile, t.cfg.AcceptNewHostKey)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", t, err)
	}
	auth := []ssh.AuthMethod{}
	if len(t.signers) > 0 {
		auth = append(auth, ssh.PublicKeys(t.signers...))
	}
	if t.cfg.AgentSocket != "" {
		var d net.Dialer
		ac, err := d.DialContext(ctx, "unix", t.cfg.AgentSocket)
		if err != nil {
			return nil, fmt.Errorf("%s: connect to ssh-agent %s: %w", t, t.cfg.AgentSocket, err)
		}
		defer ac.Close() // signers are only used during the handshake
		auth = append(auth, ssh.PublicKeysCallback(agent.NewClient(ac).Signers))
	}

	d := net.Dialer{Timeout: t.cfg.ConnectTimeout, KeepAlive: 15 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, fmt.Errorf("%s: connect: %w", t, err)
	}
	// The handshake has no context: a deadline and a close on cancel bound it.
	_ = nc.SetDeadline(time.Now().Add(t.cfg.ConnectTimeout))
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	cfg := &ssh.ClientConfig{
		User:              t.user,
		Auth:              auth,
		HostKeyCallback:   hk.callback,
		HostKeyAlgorithms: hk.algorithms(t.addr, nc.RemoteAddr()),
	}
	cc, chans, reqs, err := ssh.NewClientConn(nc, t.addr, cfg)
	canceled := !stop()
	if err != nil {
		nc.Close()
		if hk.refused != nil {
			t.log.ErrorContext(ctx, "host key refused", "err", hk.refused)
			return nil, fmt.Errorf("%s: %w", t, hk.refused)
		}
		if canceled {
			return nil, fmt.Errorf("%s: handshake: %w", t, ctx.Err())
		}
		if len(cfg.HostKeyAlgorithms) > 0 && strings.Contains(err.Error(), "no common algorithm for host key") {
			return nil, fmt.Errorf("%s: the server offers none of the host key types %s has for it (%s): its keys changed; refusing: %w",
				t, t.cfg.KnownHostsFile, strings.Join(cfg.HostKeyAlgorithms, ","), err)
		}
		return nil, fmt.Errorf("%s: ssh handshake: %w", t, err)
	}
	if canceled {
		cc.Close()
		return nil, fmt.Errorf("%s: handshake: %w", t, ctx.Err())
	}
	_ = nc.SetDeadline(time.Time{})
	if hk.accepted != nil {
		if err := hk.record(t.addr); err != nil {
			cc.Close()
			return nil, fmt.Errorf("%s: %w", t, err)
		}
		t.log.WarnContext(ctx, "recorded new host key", "known_hosts", t.cfg.KnownHostsFile,
			"type", hk.accepted.Type(), "fingerprint", ssh.FingerprintSHA256(hk.accepted))
	}
	return ssh.NewClient(cc, chans, reqs), nil
}

// keepalive asks the server for a reply every interval, one request at a
// time, and closes the connection once KeepAliveMax intervals passed
// without one. A reply of "unknown request" still proves the peer is alive.
func (t *Transport) keepalive(c *ssh.Client, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	tick := time.NewTicker(t.cfg.KeepAliveInterval)
	defer tick.Stop()
	var pending chan error
	missed := 0
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if pending != nil {
			select {
			case err := <-pending:
				pending = nil
				if err != nil {
					t.log.Warn("keepalive failed; connection lost", "err", err)
					t.lost.Store(fmt.Errorf("keepalive: %w", err))
					c.Close()
					return
				}
				missed = 0
			default:
				missed++
				if missed >= t.cfg.KeepAliveMax {
					waited := time.Duration(missed) * t.cfg.KeepAliveInterval
					t.log.Error("no answer to keepalives; closing the connection", "waited", waited)
					t.lost.Store(fmt.Errorf("no answer to keepalives for %v", waited))
					c.Close()
					return
				}
				continue
			}
		}
		pending = make(chan error, 1)
		go func(p chan<- error) {
			_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
			p <- err
		}(pending)
	}
}

// Close closes the connection; the Transport cannot be used afterwards.
func (t *Transport) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if t.client == nil {
		return nil
	}
	if t.stopKA != nil {
		close(t.stopKA)
		<-t.kaDone
	}
	t.ctl.close()
	err := t.client.Close()
	if err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("close %s: %w", t, err)
	}
	return nil
}

func newRunID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// stderrTail keeps the last bytes of stderr for ExitError.
const stderrTail = 4096

// Run runs argv on the target. The remote side runs it through the login
// user's shell, so argv is quoted for a POSIX shell. When ctx ends, every
// process the command started gets SIGTERM, then SIGKILL, and Run returns
// ctx's error.
func (t *Transport) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	runID := newRunID()
	cmd, err := t.command(argv, runID)
	if err != nil {
		return fmt.Errorf("%s: run %q: %w", t, argv, err)
	}
	c, err := t.conn(ctx)
	if err != nil {
		return err
	}
	t.mu.Lock()
	ctl := t.ctl
	t.mu.Unlock()
	sess, err := c.NewSession()
	if err != nil {
		return fmt.Errorf("%s: open session for %s: %w", t, argv[0], err)
	}
	defer sess.Close()
	tail := &tailBuffer{max: stderrTail}
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	// x/crypto copies stdout and stderr in two goroutines; callers often
	// pass one writer for both, so serialize them as os/exec does.
	var mu sync.Mutex
	sess.Stdin = stdin
	sess.Stdout = &lockedWriter{mu: &mu, w: stdout}
	sess.Stderr = &lockedWriter{mu: &mu, w: io.MultiWriter(stderr, tail)}
	t.log.DebugContext(ctx, "run", "argv", argv)
	if err := sess.Start(cmd); err != nil {
		return fmt.Errorf("%s: start %s: %w", t, argv[0], err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		t.stopRun(c, ctl, runID)
		sess.Close()
		return fmt.Errorf("%s: %s canceled: %w", t, argv[0], ctx.Err())
	}
	var ee *ssh.ExitError
	var missing *ssh.ExitMissingError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ee):
		return fmt.Errorf("on %s: %w", t, &vmctl.ExitError{Argv: argv, Code: ee.ExitStatus(), Stderr: strings.TrimSpace(tail.String())})
	case errors.As(err, &missing):
		return fmt.Errorf("%s: %s ended without an exit status (connection lost?): %w", t, argv[0], err)
	default:
		return fmt.Errorf("%s: %s: %w", t, argv[0], err)
	}
}

// lockedWriter serializes writes sharing mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (w *tailBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b = append(w.b, p...)
	if len(w.b) > w.max {
		w.b = append(w.b[:0], w.b[len(w.b)-w.max:]...)
	}
	return len(p), nil
}

func (w *tailBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return string(w.b)
}
