package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/labctl/labctl/internal/procs"
)

// Commit-confirm for provision over SSH, the way network devices do
// `commit confirmed`: moving the uplink into br0 and its address onto br0
// can cut the very connection labctl came in on (a dom0 firewall that
// accepts SSH on eth1 only sees it arrive on br0 afterwards). So before a
// remote provision changes anything, the agent arms a watchdog: a process
// of its own session, which outlives the SSH session. Unless the host
// confirms over a NEW connection before the deadline — proof that dom0 is
// still reachable after the change — the watchdog undoes every journal
// entry this run recorded, newest first, and records why in the journal
// (KindNote) and in confirm/<token>.rolled-back.

// ConfirmRequest arms (provision) or gives (confirm) the confirmation.
type ConfirmRequest struct {
	Token     string `json:"token"`
	TimeoutMS int64  `json:"timeout_ms,omitempty"`
}

// KindNote records an event, not an object: undo ignores it.
const KindNote = "note"

// confirmArm is the watchdog's file, confirm/<token>.json.
type confirmArm struct {
	Token     string    `json:"token"`
	Armed     time.Time `json:"armed"`
	Deadline  time.Time `json:"deadline"`
	Spec      Spec      `json:"spec"`
	StateRoot string    `json:"state_root"`
	NoResolv  bool      `json:"no_resolv,omitempty"`
}

var confirmToken = regexp.MustCompile(`^[0-9a-f]{16,64}$`)

func confirmDir(stateDir string) string { return filepath.Join(stateDir, "confirm") }

// armConfirm writes the watchdog's file and starts it detached. It runs
// before any step changes dom0.
func armConfirm(stateDir string, req AgentRequest, log *slog.Logger) (string, error) {
	c := req.Confirm
	if !confirmToken.MatchString(c.Token) {
		return "", fmt.Errorf("confirm token %q: expected 16-64 hex digits", c.Token)
	}
	if c.TimeoutMS < 1000 || c.TimeoutMS > 3600_000 {
		return "", fmt.Errorf("confirm timeout %d ms: expected 1 s to 1 h", c.TimeoutMS)
	}
	dir := confirmDir(stateDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("confirm directory: %w", err)
	}
	now := time.Now().UTC()
	arm := confirmArm{Token: c.Token, Armed: now.Truncate(time.Millisecond), Deadline: now.Add(time.Duration(c.TimeoutMS) * time.Millisecond),
		Spec: req.Spec, StateRoot: req.StateRoot, NoResolv: req.NoResolv}
	b, _ := json.MarshalIndent(arm, "", "  ")
	path := filepath.Join(dir, c.Token+".json")
	if err := procs.WriteFileAtomic(path, b, 0o600); err != nil {
		return "", err
	}
	exe, err := os.Executable()
	if err != nil {
		os.Remove(path)
		return "", err
	}
	cmd := exec.Command(exe, "agent", "confirm-watch", path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives the SSH session
	logf, err := os.OpenFile(filepath.Join(dir, c.Token+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err == nil {
		cmd.Stdout, cmd.Stderr = logf, logf
		defer logf.Close()
	}
	if err := cmd.Start(); err != nil {
		os.Remove(path)
		return "", fmt.Errorf("starting the confirm watchdog: %w", err)
	}
	go cmd.Wait()
	log.Info("commit-confirm armed", "deadline", arm.Deadline, "watchdog", cmd.Process.Pid)
	return path, nil
}

// Confirm tells the watchdog of token that the host reached dom0 over a
// new connection. It fails, saying why, when the run was already rolled
// back or no watchdog is armed.
func Confirm(stateRoot, lab, token string) error {
	if !confirmToken.MatchString(token) {
		return fmt.Errorf("confirm token %q: expected 16-64 hex digits", token)
	}
	dir := confirmDir(StateDir(stateRoot, lab))
	if b, err := os.ReadFile(filepath.Join(dir, token+".rolled-back")); err == nil {
		return fmt.Errorf("too late: dom0 already rolled this provision back: %s", strings.TrimSpace(string(b)))
	}
	if _, err := os.Stat(filepath.Join(dir, token+".json")); err != nil {
		return fmt.Errorf("no provision waits for confirmation %s in lab %s: %w", token, lab, err)
	}
	return procs.WriteFileAtomic(filepath.Join(dir, token+".ok"), []byte(time.Now().UTC().Format(time.RFC3339Nano)+"\n"), 0o600)
}

// WatchConfirm is the watchdog (labctl agent confirm-watch FILE): it waits
// for the confirmation until the deadline, then rolls the run back.
func WatchConfirm(ctx context.Context, path string, o Options) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	var arm confirmArm
	if err := json.Unmarshal(b, &arm); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	ok := strings.TrimSuffix(path, ".json") + ".ok"
	for time.Now().Before(arm.Deadline) {
		if _, err := os.Stat(ok); err == nil {
			os.Remove(ok)
			os.Remove(path)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	if _, err := os.Stat(ok); err == nil {
		os.Remove(ok)
		os.Remove(path)
		return nil
	}
	reason := fmt.Sprintf("not confirmed over a new connection by %s (armed %s): dom0 was unreachable after provision, so this run's changes were undone",
		arm.Deadline.Format(time.RFC3339), arm.Armed.Format(time.RFC3339))
	o.Spec, o.StateRoot, o.NoResolv = arm.Spec, arm.StateRoot, arm.NoResolv
	// The agent that armed us may still hold the lab's lock while its
	// last writes to the dead connection time out.
	var d *Dom0
	var done func()
	for try := 0; ; try++ {
		d, done, err = Open(o)
		if err == nil || try >= 600 || !strings.Contains(err.Error(), "busy") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("rollback: %w", err)
	}
	defer done()
	undone, rerr := d.Rollback(ctx, arm.Armed, reason)
	msg := reason + fmt.Sprintf(" (%d undone)", undone)
	if rerr != nil {
		msg += "; rollback failed: " + rerr.Error()
	}
	os.WriteFile(strings.TrimSuffix(path, ".json")+".rolled-back", []byte(msg+"\n"), 0o600)
	os.Remove(path)
	return rerr
}

// Rollback undoes the journal entries recorded at or after since, newest
// first, and records reason as a note.
func (d *Dom0) Rollback(ctx context.Context, since time.Time, reason string) (int, error) {
	entries := d.Journal.List()
	n := 0
	var err error
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Time.Before(since) || e.Kind == KindNote {
			continue
		}
		uerr := d.in(func() error { return undoer{Dom0: d}.undo(ctx, e) })
		if uerr == nil {
			uerr = d.Journal.Forget(e)
		}
		if uerr != nil {
			err = errors.Join(err, fmt.Errorf("undoing %q: %w", e.String(), uerr))
			continue
		}
		n++
	}
	nerr := d.Journal.Record(Entry{Kind: KindNote, Name: "rollback", Spec: reason, Path: since.UTC().Format(time.RFC3339Nano)})
	return n, errors.Join(err, nerr)
}
