package vmctl_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/vmctl"
	"github.com/labctl/labctl/vmctl/sshx"
)

// simLab creates the namespaces of a uniquely named sim lab, removed in
// t.Cleanup (with every process in them) also when the test fails.
func simLab(t *testing.T) (host, dom0 string) {
	t.Helper()
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "ip")
	if _, err := vmctl.SSHDBinary(); err != nil {
		testenv.RequireTool(t, "sshd")
	}
	b := make([]byte, 3)
	rand.Read(b)
	lab := "vs" + hex.EncodeToString(b)
	log := slog.New(slog.DiscardHandler)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := vmctl.SimDown(ctx, lab, log); err != nil {
			t.Errorf("cleanup: %v", err)
		}
		if ns, _ := vmctl.SimNamespaces(lab); len(ns) > 0 {
			t.Errorf("leaked namespaces %v", ns)
		}
	})
	c := vmctl.SimConfig{Lab: lab, Uplink: "eth1",
		HostAddr: netip.MustParsePrefix("192.168.77.1/24"), Dom0Addr: netip.MustParsePrefix("192.168.77.2/24")}
	if err := vmctl.SimUp(context.Background(), c, log); err != nil {
		t.Fatal(err)
	}
	host, dom0, _ = vmctl.SimNames(lab)
	return host, dom0
}

// run connects from the host namespace with the files the server wrote
// and runs argv on it.
func run(t *testing.T, s vmctl.SimSSHD, host string, argv ...string) (string, error) {
	t.Helper()
	tr, err := sshx.New(sshx.Config{Target: s.Target(), IdentityFiles: []string{s.IdentityPath()}, KnownHostsFile: s.KnownHostsPath()})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// The connection's socket is made inside the host namespace and
	// stays there.
	labtest.InNetns(t, host, func() { err = tr.Connect(ctx) })
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	err = tr.Run(ctx, argv, nil, &out, &out)
	return out.String(), err
}

func TestSimSSHD(t *testing.T) {
	host, dom0 := simLab(t)
	s := vmctl.SimSSHD{Netns: dom0, Addr: netip.MustParseAddr("192.168.77.2"), Dir: filepath.Join(t.TempDir(), "ssh")}
	ctx := context.Background()
	pid, err := s.Up(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s.Target() != "ssh://root@192.168.77.2" || s.Pid() != pid {
		t.Fatalf("target %s, pid %d / %d", s.Target(), s.Pid(), pid)
	}
	// The session runs in dom0's namespace, as root, with the host key
	// verified against the known_hosts the server wrote.
	out, err := run(t, s, host, "sh", "-c", "id -u; ip -4 -br addr show eth1")
	if err != nil || !strings.HasPrefix(out, "0\n") || !strings.Contains(out, "192.168.77.2/24") {
		t.Fatalf("session: %q, %v", out, err)
	}
	// Idempotent: same process, same keys.
	kh, _ := os.ReadFile(s.KnownHostsPath())
	if again, err := s.Up(ctx); err != nil || again != pid {
		t.Fatalf("second Up: pid %d (was %d), %v", again, pid, err)
	}
	if kh2, _ := os.ReadFile(s.KnownHostsPath()); !bytes.Equal(kh, kh2) {
		t.Fatal("second Up changed the host key")
	}
	// A changed config restarts it: the old server is gone.
	s.Port = 2222
	pid2, err := s.Up(ctx)
	if err != nil || pid2 == pid || procs.Alive(pid) {
		t.Fatalf("Up on another port: pid %d → %d, %v", pid, pid2, err)
	}
	if s.Target() != "ssh://root@192.168.77.2:2222" {
		t.Fatalf("target %s", s.Target())
	}
	if out, err := run(t, s, host, "true"); err != nil {
		t.Fatalf("port 2222: %q %v", out, err)
	}
	// A second server for the same address and port cannot bind: Up
	// reports sshd's exit with its log. Its keys are its own, so a client
	// holding its known_hosts is refused by the first server's host key.
	other := vmctl.SimSSHD{Netns: s.Netns, Addr: s.Addr, Port: s.Port, Dir: t.TempDir()}
	if _, err := other.Up(ctx); err == nil || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("a second server on %s: %v", s.HostPort(), err)
	}
	if _, err := run(t, other, host, "true"); err == nil || !strings.Contains(err.Error(), "HOST KEY CHANGED") {
		t.Fatalf("another server's known_hosts: %v", err)
	}
	// SimDown stops it with everything else in the namespace.
	if err := vmctl.SimDown(ctx, strings.TrimSuffix(dom0, "-dom0"), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for procs.Alive(pid2) {
		if time.Now().After(deadline) {
			t.Fatalf("sshd %d survived SimDown", pid2)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
