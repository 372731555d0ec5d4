package xen

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/vmctl"
)

// Runner runs one command to completion. It is the narrow part of
// vmctl.Transport the xen runtime needs, so any Transport is a Runner.
type Runner interface {
	Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error
}

// Spawner starts a command that outlives the call: the xl console reader
// that keeps writing a guest's console to its log.
type Spawner interface {
	// Spawn starts argv with stdout and stderr appended to logPath and
	// returns its pid.
	Spawn(ctx context.Context, argv []string, logPath string) (int, error)
}

// LocalRunner runs commands on this machine (dom0, when labctl runs as the
// agent there).
type LocalRunner struct{}

// stderrTail bounds how much stderr an ExitError carries.
const stderrTail = 4096

// Run implements Runner. A non-zero exit returns an error wrapping
// *vmctl.ExitError; a missing binary wraps exec.ErrNotFound.
func (LocalRunner) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(argv) == 0 {
		return errors.New("run: empty command")
	}
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Stdin = stdin
	cmd.Stdout = stdout
	if cmd.Stdout == nil {
		cmd.Stdout = io.Discard
	}
	tail := &tailBuffer{max: stderrTail}
	if stderr != nil {
		cmd.Stderr = io.MultiWriter(stderr, tail)
	} else {
		cmd.Stderr = tail
	}
	// Children such as make start grandchildren: let a cancelled context
	// take the whole process group down, not only the first process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ctx.Err() == nil {
		return fmt.Errorf("run %s: %w", argv[0], &vmctl.ExitError{
			Argv: argv, Code: ee.ExitCode(), Stderr: strings.TrimSpace(tail.String()),
		})
	}
	if ctx.Err() != nil {
		return fmt.Errorf("run %s: %w", argv[0], ctx.Err())
	}
	return fmt.Errorf("run %s: %w", argv[0], err)
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// LocalSpawner starts detached processes on this machine.
type LocalSpawner struct{}

// Spawn implements Spawner. The process gets its own session, so it
// survives labctl, and a stdin pipe whose write end it holds itself:
// older xenconsole clients exit on stdin EOF, and /dev/null is EOF at once.
func (LocalSpawner) Spawn(_ context.Context, argv []string, logPath string) (int, error) {
	if len(argv) == 0 {
		return 0, errors.New("spawn: empty command")
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return 0, fmt.Errorf("spawn %s: open log: %w", argv[0], err)
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return 0, fmt.Errorf("spawn %s: stdin pipe: %w", argv[0], err)
	}
	defer r.Close()
	defer w.Close()
	// Not CommandContext: the reader must outlive the request that started it.
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin = r
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("spawn %s: %w", argv[0], err)
	}
	// Reap it if it exits while labctl still runs, so it is no zombie.
	go func() { _ = cmd.Wait() }()
	return cmd.Process.Pid, nil
}

// stopProcess ends the process group led by pid: TERM, then KILL after
// grace. It returns once the process is gone or a zombie.
func stopProcess(pid int, grace time.Duration, want ...string) error {
	if !procs.Alive(pid, want...) {
		return nil
	}
	if err := syscall.Kill(-pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("stop pid %d: %w", pid, err)
	}
	deadline := time.Now().Add(grace)
	for time.Now().Before(deadline) {
		if !procs.Alive(pid, want...) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("kill pid %d: %w", pid, err)
	}
	for i := 0; i < 100 && procs.Alive(pid, want...); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	return nil
}

// notInstalled reports whether err says the command does not exist: a
// local exec.ErrNotFound, or a shell's 127 through a remote transport.
func notInstalled(err error) bool {
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, fs.ErrNotExist) {
		return true
	}
	var ee *vmctl.ExitError
	return errors.As(err, &ee) && ee.Code == 127
}
