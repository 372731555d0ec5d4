package sshx

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// runIDVar tags every process a Run starts so that a canceled Run can find
// and stop them. Signals are no way: OpenSSH refuses "signal" requests for
// root logins ("session signalling requires privilege separation"), a
// non-root login cannot signal what it started through sudo, and closing a
// session without a pty leaves the remote command running.
const runIDVar = "LABCTL_RUN_ID"

// cancelDir is created by the kill function before it looks for
// processes; runGuard refuses to start once it exists. So a command still
// starting when Run is canceled either is tagged in time to be found or
// sees the flag and exits.
const cancelDir = "/tmp/.labctl-cancel-"

// runGuard wraps every command (argv follows as "$@").
const runGuard = `[ ! -e "` + cancelDir + `$` + runIDVar + `" ] || exit 130; exec "$@"`

// command builds the remote command line for argv, tagged with runID.
func (t *Transport) command(argv []string, runID string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("empty command")
	}
	full := []string{"env", runIDVar + "=" + runID, "sh", "-c", runGuard, "labctl-run"}
	return t.wrap(append(full, argv...))
}

// wrap quotes argv for the login shell, through sudo when configured.
func (t *Transport) wrap(argv []string) (string, error) {
	if t.cfg.Sudo {
		argv = append([]string{"sudo", "-n", "--"}, argv...)
	}
	return QuoteCommand(argv)
}

// killFunc stops what a canceled Run started: it raises the cancel flag
// (mkdir: atomic, follows no planted symlink), then TERMs every process
// whose environment carries the run's tag until none is left (KILL after
// about 2s). It prints "sig ID SIGNAL PID..." for what it signalled. Flags
// stay behind (a command may reach its guard late); each call clears those
// older than ten minutes.
const killFunc = `labctl_kill() {
	id=$1
	tag="` + runIDVar + `=$id"
	flag="` + cancelDir + `$id"
	mkdir -m 0700 "$flag" 2>/dev/null || true
	find /tmp -maxdepth 1 -name '.labctl-cancel-*' -type d -mmin +10 -exec rmdir {} + 2>/dev/null || true
	i=0 quiet=0
	while [ "$i" -lt 25 ] && [ "$quiet" -lt 2 ]; do
		p=$(grep -lsxzF -- "$tag" /proc/[0-9]*/environ | sed 's|^/proc/||; s|/environ$||')
		if [ -z "$p" ]; then
			quiet=$((quiet + 1))
		else
			quiet=0
			sig=TERM
			[ "$i" -lt 10 ] || sig=KILL
			echo "sig $id $sig" $p
			kill -s "$sig" $p 2>/dev/null || true
			sleep 0.2
		fi
		i=$((i + 1))
	done
}
`

// killScript is the one-shot form, run in a session of its own when the
// canceller shell is not there.
const killScript = killFunc + `labctl_kill "$1"
`

// cancellerScript is the canceller shell: one run ID (hex) per line in,
// the kill function's lines and "done ID" out.
const cancellerScript = killFunc + `echo ready
while IFS= read -r id; do
	case $id in ''|*[!0-9a-f]*) echo "bad id"; continue ;; esac
	labctl_kill "$id"
	echo "done $id"
done
`

// errCancellerDown: the canceller shell never started or has gone; the
// caller falls back to a session of its own.
var errCancellerDown = errors.New("canceller shell not running")

// canceller is a shell kept open on the connection beside the commands,
// there to stop canceled runs.
//
// Why not a new session per cancel, as before: sshd runs every command
// through the login user's shell, and Debian's bash reads ~/.bashrc for a
// command from sshd (SSH_SOURCE_BASHRC). With a .bashrc that runs `pyenv
// init` a session took 0.6 s to start on an idle machine and 2.1–2.4 s
// beside two CPU hogs, so a Ctrl-C waited that long before anything was
// signalled (TestRunCancel's failures). The canceller pays that start-up
// once per connection, in the background, and a cancel is one line written
// to a shell that is already running.
type canceller struct {
	log   *slog.Logger
	ready chan struct{} // closed once the shell said "ready", or failed

	mu      sync.Mutex
	sess    *ssh.Session
	in      io.WriteCloser
	err     error                    // set once the shell is gone
	waiting map[string]chan string   // run ID → its "done" delivery
	sig     map[string]*bytes.Buffer // run ID → what was signalled
	closed  bool
	wmu     sync.Mutex // serializes writes to in
}

// openCanceller starts the canceller shell on c in the background.
func (t *Transport) openCanceller(c *ssh.Client) *canceller {
	k := &canceller{log: t.log, ready: make(chan struct{}),
		waiting: map[string]chan string{}, sig: map[string]*bytes.Buffer{}}
	cmd, err := t.wrap([]string{"sh", "-c", cancellerScript, "labctl-cancel"})
	if err != nil {
		k.fail(err)
		return k
	}
	go k.start(c, cmd)
	return k
}

func (k *canceller) start(c *ssh.Client, cmd string) {
	sess, err := c.NewSession()
	if err != nil {
		k.fail(fmt.Errorf("open session: %w", err))
		return
	}
	in, err := sess.StdinPipe()
	if err != nil {
		sess.Close()
		k.fail(err)
		return
	}
	out, err := sess.StdoutPipe()
	if err != nil {
		sess.Close()
		k.fail(err)
		return
	}
	var stderr tailBuffer
	stderr.max = 1024
	sess.Stderr = &stderr
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		sess.Close()
		k.fail(errCancellerDown)
		return
	}
	k.sess, k.in = sess, in
	k.mu.Unlock()
	if err := sess.Start(cmd); err != nil {
		sess.Close()
		k.fail(fmt.Errorf("start: %w", err))
		return
	}
	k.read(out)
	err = sess.Wait()
	k.mu.Lock()
	closed := k.closed
	k.mu.Unlock()
	if !closed {
		k.log.Warn("canceller shell ended; cancels will open sessions of their own", "err", err, "stderr", strings.TrimSpace(stderr.String()))
	}
	k.fail(fmt.Errorf("%w (ended: %v)", errCancellerDown, err))
}

// read dispatches the shell's lines until its stdout closes.
func (k *canceller) read(out io.Reader) {
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 1 && f[0] == "ready":
			k.markReady()
		case len(f) >= 3 && f[0] == "sig":
			k.mu.Lock()
			if b := k.sig[f[1]]; b != nil {
				if b.Len() > 0 {
					b.WriteString("; ")
				}
				b.WriteString(strings.Join(f[2:], " "))
			}
			k.mu.Unlock()
		case len(f) == 2 && f[0] == "done":
			k.mu.Lock()
			if ch := k.waiting[f[1]]; ch != nil {
				ch <- k.sig[f[1]].String()
				delete(k.waiting, f[1])
				delete(k.sig, f[1])
			}
			k.mu.Unlock()
		}
	}
}

func (k *canceller) markReady() {
	select {
	case <-k.ready:
	default:
		close(k.ready)
	}
}

// fail records that the shell is gone and wakes everyone waiting on it.
func (k *canceller) fail(err error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.err == nil {
		k.err = err
	}
	for id, ch := range k.waiting {
		close(ch)
		delete(k.waiting, id)
	}
	k.markReady()
}

// stop has the shell stop run id and returns what it signalled. It waits
// at most timeout in all, for the shell to come up and for the kill.
func (k *canceller) stop(id string, timeout time.Duration) (string, error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-k.ready:
	case <-timer.C:
		return "", fmt.Errorf("canceller shell not up after %v", timeout)
	}
	ch := make(chan string, 1)
	k.mu.Lock()
	if k.err != nil {
		err := k.err
		k.mu.Unlock()
		return "", fmt.Errorf("%w: %w", errCancellerDown, err)
	}
	k.waiting[id] = ch
	k.sig[id] = &bytes.Buffer{}
	in := k.in
	k.mu.Unlock()
	k.wmu.Lock()
	_, err := io.WriteString(in, id+"\n")
	k.wmu.Unlock()
	if err != nil {
		k.fail(err)
		return "", fmt.Errorf("%w: write: %w", errCancellerDown, err)
	}
	select {
	case s, ok := <-ch:
		if !ok {
			return "", errCancellerDown
		}
		return s, nil
	case <-timer.C:
		k.mu.Lock()
		delete(k.waiting, id)
		delete(k.sig, id)
		k.mu.Unlock()
		return "", fmt.Errorf("stopping run %s timed out after %v", id, timeout)
	}
}

// close ends the shell: EOF on its stdin ends its loop.
func (k *canceller) close() {
	k.mu.Lock()
	k.closed = true
	sess, in := k.sess, k.in
	k.mu.Unlock()
	if in != nil {
		in.Close()
	}
	if sess != nil {
		sess.Close()
	}
}

// stopRun stops what a canceled Run left running: through the canceller
// shell when it is there, else in a session of its own. Best effort: on a
// lost connection sshd ends the remote side itself once it notices.
func (t *Transport) stopRun(c *ssh.Client, k *canceller, runID string) {
	const limit = 10 * time.Second
	if k != nil {
		signalled, err := k.stop(runID, limit)
		switch {
		case err == nil:
			t.log.Info("stopped canceled command", "run", runID, "signalled", signalled)
			return
		case !errors.Is(err, errCancellerDown):
			t.log.Warn("stopping canceled command failed", "run", runID, "err", err)
			return
		}
	}
	t.killRun(c, runID, limit)
}

// killRun is stopRun's fallback: the kill function in a session of its own.
func (t *Transport) killRun(c *ssh.Client, runID string, limit time.Duration) {
	cmd, err := t.command([]string{"sh", "-c", killScript, "labctl-kill", runID}, "kill-"+runID)
	if err != nil {
		return
	}
	sess, err := c.NewSession()
	if err != nil {
		t.log.Warn("cannot stop canceled command", "run", runID, "err", err)
		return
	}
	defer sess.Close()
	var out, errb bytes.Buffer
	sess.Stdout, sess.Stderr = &out, &errb
	done := make(chan error, 1)
	go func() { done <- sess.Run(cmd) }()
	select {
	case err = <-done:
		if err != nil {
			t.log.Warn("stopping canceled command failed", "run", runID, "err", err, "stderr", errb.String())
		} else {
			t.log.Info("stopped canceled command", "run", runID, "signalled", strings.TrimSpace(out.String()), "via", "own session")
		}
	case <-time.After(limit):
		t.log.Warn("stopping canceled command timed out", "run", runID)
	}
}
