// Package procs tells live processes from zombies and reused pids, and
// stops them; atomic file writes and file checksums live here too. Shared by dom0's daemons
// (dnsmasq, sshd) and the guests' runtimes.
package procs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ProcStat is what labctl reads of /proc/<pid>/stat (proc_pid_stat(5)).
type ProcStat struct {
	State byte // R, S, D, Z (zombie), X (dead), ...
	PGrp  int  // process group
}

// Live says the process has not exited: a zombie holds no files and
// serves nothing.
func (s ProcStat) Live() bool { return s.State != 'Z' && s.State != 'X' }

// Stat reads pid's state and process group. The fields follow the
// parenthesised command name, which may itself contain spaces or
// parentheses.
func Stat(pid int) (ProcStat, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return ProcStat{}, false
	}
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return ProcStat{}, false
	}
	f := strings.Fields(string(stat[i+1:])) // state ppid pgrp ...
	if len(f) < 3 || len(f[0]) != 1 {
		return ProcStat{}, false
	}
	pgrp, err := strconv.Atoi(f[2])
	if err != nil {
		return ProcStat{}, false
	}
	return ProcStat{State: f[0][0], PGrp: pgrp}, true
}

// Alive reports whether pid is a live (not zombie) process whose
// command line contains every one of want. A killed daemon lingers as a
// zombie until PID 1 reaps it, kill(pid, 0) succeeds on zombies, and pids
// are reused: only /proc tells the truth.
func Alive(pid int, want ...string) bool {
	if pid <= 0 {
		return false
	}
	if st, ok := Stat(pid); !ok || !st.Live() {
		return false
	}
	cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
	for _, w := range want {
		found := false
		for _, a := range args {
			if a == w || filepath.Base(a) == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// SameNetns reports whether pid lives in the calling thread's network
// namespace. The thread's, not the process's: labctl runs the sim's steps
// on threads that entered dom0's namespace.
func SameNetns(pid int) bool {
	a, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	b, err2 := os.Readlink("/proc/thread-self/ns/net")
	return err1 == nil && err2 == nil && a == b
}

// ReadPidfile returns the pid in path, 0 if absent or unreadable.
func ReadPidfile(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 0 {
		return 0
	}
	return pid
}

// Stop sends SIGTERM to pid if it is alive and ours (its cmdline
// has every want), and waits until it is gone or a zombie. Not running
// is success.
func Stop(ctx context.Context, pid int, want ...string) error {
	if pid <= 0 {
		return nil
	}
	// A pidfd pins the process: checked, signalled and waited for through
	// it, a pid reused in between is never touched, and poll(2) wakes at
	// the exit itself (pidfd_open(2), Linux 5.3) instead of a sleep's
	// later check: the dnsmasq stop is on a teardown's critical path.
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil
	}
	if err != nil {
		return stopPolling(ctx, pid, want...)
	}
	defer unix.Close(fd)
	if !Alive(pid, want...) {
		return nil
	}
	signal := func(sig unix.Signal) error {
		if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("stopping pid %d: %w", pid, err)
		}
		return nil
	}
	if err := signal(unix.SIGTERM); err != nil {
		return err
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		// 20 ms slices: the context is looked at between them.
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 20)
		if n > 0 {
			return nil
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			return stopPolling(ctx, pid, want...)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Now().After(deadline) {
			if err := signal(unix.SIGKILL); err != nil {
				return err
			}
			deadline = time.Now().Add(5 * time.Second)
		}
	}
}

// stopPolling is Stop without a pidfd (a kernel before 5.3): SIGTERM, then
// a look every 5 ms, SIGKILL after 5 s.
func stopPolling(ctx context.Context, pid int, want ...string) error {
	if !Alive(pid, want...) {
		return nil
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stopping pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for Alive(pid, want...) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			deadline = time.Now().Add(5 * time.Second)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	return nil
}

// StopDaemon stops the process in pidfile and any other live process in
// this namespace whose command line has every one of want (want[0] names
// it in errors). Nothing running is success.
func StopDaemon(ctx context.Context, pidfile string, want ...string) error {
	pids := append([]int{ReadPidfile(pidfile)}, Find(want...)...)
	for _, pid := range pids {
		if err := Stop(ctx, pid, want...); err != nil {
			return fmt.Errorf("%s: %w", want[0], err)
		}
	}
	return nil
}

// Find lists live processes in the caller's network namespace whose
// command line has every one of want.
func Find(want ...string) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 || pid == os.Getpid() {
			continue
		}
		if Alive(pid, want...) && SameNetns(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// WriteFileAtomic writes data to path through a temporary file and a
// rename, so a killed labctl never leaves a half-written file. It does not
// fsync: labctl's state files describe kernel state that does not survive
// a machine crash either (see provision.Journal).
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// FileSHA256 is the hex SHA-256 of a file's content: whether a users image
// or labctl's own binary changed.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("checksum %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("checksum %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
