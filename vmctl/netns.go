package vmctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Local runs commands on this machine, in labctl's own namespace.
type Local struct{}

func (Local) String() string { return "local" }
func (Local) Close() error   { return nil }

// Run implements Transport.
func (Local) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runCmd(ctx, nil, argv, stdin, stdout, stderr)
}

// Put implements Transport.
func (Local) Put(ctx context.Context, local, path string, mode os.FileMode) error {
	return copyFile(local, path, mode)
}

// Netns runs commands inside a named network namespace (/run/netns/NAME)
// and shares everything else (filesystem, users) with labctl: the
// simulated lab's stand-in for reaching a machine.
type Netns struct{ Name string }

func (n Netns) String() string { return "netns " + n.Name }
func (Netns) Close() error     { return nil }

// Run implements Transport: the child is forked from an OS thread that
// entered the namespace, and a forked child keeps its parent thread's
// namespace. The thread is locked for the fork and returned to labctl's
// namespace afterwards (or discarded if that fails).
func (n Netns) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	return runCmd(ctx, &n.Name, argv, stdin, stdout, stderr)
}

// Put implements Transport (same filesystem).
func (Netns) Put(ctx context.Context, local, path string, mode os.FileMode) error {
	return copyFile(local, path, mode)
}

// Do runs f on an OS thread inside the namespace. Everything f does on
// that thread is in the namespace: sockets it opens (netlink included),
// processes it forks, /proc/sys/net and /proc/thread-self. Goroutines f
// starts are not: they run on other threads.
func (n Netns) Do(f func() error) error { return inNetns(n.Name, f) }

// Start starts argv inside the namespace and returns the running command.
func (n Netns) Start(cmd *exec.Cmd) error { return startIn(n.Name, cmd) }

func runCmd(ctx context.Context, ns *string, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(argv) == 0 {
		return errors.New("empty command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if stdout != nil && stdout == stderr {
		// One writer for both streams: os/exec copies each from its own
		// goroutine, so serialize the writes.
		lw := &lockedWriter{w: stdout}
		stdout, stderr = lw, lw
	}
	cmd.Stdin, cmd.Stdout = stdin, stdout
	var errBuf bytes.Buffer
	if stderr != nil {
		cmd.Stderr = io.MultiWriter(stderr, &tail{b: &errBuf})
	} else {
		cmd.Stderr = &tail{b: &errBuf}
	}
	var err error
	if ns != nil {
		err = startIn(*ns, cmd)
	} else {
		err = cmd.Start()
	}
	if err != nil {
		return fmt.Errorf("starting %s: %w", argv[0], err)
	}
	if err := cmd.Wait(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return &ExitError{Argv: argv, Code: ee.ExitCode(), Stderr: strings.TrimSpace(errBuf.String())}
		}
		return fmt.Errorf("running %s: %w", argv[0], err)
	}
	return nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// tail keeps the last 4 KiB written, for error messages.
type tail struct{ b *bytes.Buffer }

func (t *tail) Write(p []byte) (int, error) {
	t.b.Write(p)
	if t.b.Len() > 4096 {
		keep := t.b.Bytes()[t.b.Len()-4096:]
		nb := bytes.NewBuffer(append([]byte(nil), keep...))
		*t.b = *nb
	}
	return len(p), nil
}

// startIn forks cmd from a thread inside the named namespace.
func startIn(name string, cmd *exec.Cmd) error {
	return inNetns(name, cmd.Start)
}

// HandleAt opens a netlink handle in the named namespace; close it with
// Close. Netlink sockets keep the namespace they were opened in, so the
// handle works from any thread.
func HandleAt(name string) (*netlink.Handle, error) {
	ns, err := netns.GetFromName(name)
	if err != nil {
		return nil, fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", name, err)
	}
	return h, nil
}

func copyFile(src, dst string, mode os.FileMode) error {
	if src == dst {
		return nil
	}
	b, err := os.ReadFile(src)
	if err != nil {
		return fmt.Errorf("reading %s: %w", src, err)
	}
	tmp := dst + ".labctl-tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return nil
}
