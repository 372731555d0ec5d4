// Package xen is the vmctl.Runtime that boots guests as Xen domains with
// xl: labctl renders each guest's .xl itself, runs xl create/list/destroy,
// and keeps a reader of the guest's console writing to a log. It also
// builds the MirageOS unikernel (mirage configure/make) and checks the
// toolchain before any of that (Preflight).
package xen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/statedir"
	"github.com/labctl/labctl/vmctl"
)

// Runtime runs guests with xl. Commands go through Runner, so the same code
// drives a real dom0, a test's fake xl, or a namespace of the simulated lab.
type Runtime struct {
	// XL is the xl binary, "xl" (from PATH) when empty. Tests and the
	// simulated lab point it at a stand-in.
	XL      string
	Runner  Runner
	Spawner Spawner
	Log     *slog.Logger
	// ConsoleGrace is how long Stop waits for the console reader to exit
	// after SIGTERM before SIGKILL; 2s when zero.
	ConsoleGrace time.Duration
}

var _ vmctl.Runtime = (*Runtime)(nil)

// New returns a Runtime. A nil runner or spawner means this machine; a
// nil logger discards.
func New(runner Runner, spawner Spawner, log *slog.Logger) *Runtime {
	if runner == nil {
		runner = LocalRunner{}
	}
	if spawner == nil {
		spawner = LocalSpawner{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Runtime{Runner: runner, Spawner: spawner, Log: log}
}

// Name implements vmctl.Runtime.
func (r *Runtime) Name() string { return "xen" }

func (r *Runtime) xl() string {
	if r.XL == "" {
		return "xl"
	}
	return r.XL
}

// ConsoleLog is where a guest's console is captured (`labctl logs GUEST`).
func ConsoleLog(g vmctl.GuestSpec) string { return filepath.Join(g.StateDir, statedir.ConsoleLog) }

// ConsolePIDFile holds the pid of the process writing ConsoleLog.
func ConsolePIDFile(g vmctl.GuestSpec) string { return filepath.Join(g.StateDir, "console.pid") }

// run runs an xl subcommand and returns its stdout.
func (r *Runtime) run(ctx context.Context, args ...string) ([]byte, error) {
	var out, errb bytes.Buffer
	argv := append([]string{r.xl()}, args...)
	err := r.Runner.Run(ctx, argv, nil, &out, &errb)
	var ee *vmctl.ExitError
	if errors.As(err, &ee) && ee.Stderr == "" {
		// Not every transport fills Stderr; xl's reason is in it.
		ee.Stderr = strings.TrimSpace(errb.String())
	}
	return out.Bytes(), err
}

// Domains runs `xl list`.
func (r *Runtime) Domains(ctx context.Context) ([]Domain, error) {
	out, err := r.run(ctx, "list")
	if err != nil {
		return nil, fmt.Errorf("xen: xl list: %w", err)
	}
	doms, err := ParseList(out)
	if err != nil {
		return nil, fmt.Errorf("xen: %w", err)
	}
	return doms, nil
}

func (r *Runtime) find(ctx context.Context, name string) (Domain, bool, error) {
	doms, err := r.Domains(ctx)
	if err != nil {
		return Domain{}, false, err
	}
	for _, d := range doms {
		if d.Name == name {
			return d, true, nil
		}
	}
	return Domain{}, false, nil
}

// Config runs `xl list -l <name>` and returns the live config of the
// guest; found is false when no such domain exists.
func (r *Runtime) Config(ctx context.Context, g vmctl.GuestSpec) (cfg DomainConfig, found bool, err error) {
	if _, ok, err := r.find(ctx, g.Name); err != nil || !ok {
		return DomainConfig{}, false, err
	}
	return r.liveConfig(ctx, g.Name)
}

func (r *Runtime) liveConfig(ctx context.Context, name string) (DomainConfig, bool, error) {
	out, err := r.run(ctx, "list", "-l", name)
	if err != nil {
		return DomainConfig{}, false, fmt.Errorf("xen: guest %q: xl list -l: %w", name, err)
	}
	doms, err := ParseListLong(out)
	if err != nil {
		return DomainConfig{}, false, fmt.Errorf("xen: guest %q: %w", name, err)
	}
	for _, d := range doms {
		if d.Name == name {
			return d, true, nil
		}
	}
	return DomainConfig{}, false, nil
}

// State implements vmctl.Runtime from `xl list`.
func (r *Runtime) State(ctx context.Context, g vmctl.GuestSpec) (vmctl.GuestState, error) {
	d, ok, err := r.find(ctx, g.Name)
	if err != nil {
		return vmctl.GuestState{}, fmt.Errorf("xen: state of guest %q: %w", g.Name, err)
	}
	if !ok {
		return vmctl.GuestState{Name: g.Name, State: "stopped"}, nil
	}
	st := vmctl.GuestState{Name: g.Name, ID: d.ID, State: d.State(), Running: d.Alive()}
	return st, nil
}

// Start implements vmctl.Runtime: render the .xl into the guest's state
// directory, `xl create` it, and start capturing its console. A guest
// already running with the same config is left alone; one running with a
// different config, or crashed, is destroyed and created again.
func (r *Runtime) Start(ctx context.Context, g vmctl.GuestSpec) error {
	text, err := RenderXL(g)
	if err != nil {
		return fmt.Errorf("xen: start guest %q: %w", g.Name, err)
	}
	if err := os.MkdirAll(g.StateDir, 0o700); err != nil {
		return fmt.Errorf("xen: start guest %q: state dir: %w", g.Name, err)
	}
	path := XLFile(g)
	if err := procs.WriteFileAtomic(path, text, 0o600); err != nil {
		return fmt.Errorf("xen: start guest %q: %w", g.Name, err)
	}
	d, found, err := r.find(ctx, g.Name)
	if err != nil {
		return fmt.Errorf("xen: start guest %q: %w", g.Name, err)
	}
	if found {
		reason := "it is " + d.State()
		if d.Alive() {
			live, ok, err := r.liveConfig(ctx, g.Name)
			switch {
			case err != nil:
				reason = "its live config cannot be read: " + err.Error()
			case ok:
				diff := ConfigDiff(live, g)
				if len(diff) == 0 {
					r.Log.Info("guest already running", "guest", g.Name, "domid", d.ID)
					return r.ensureConsole(ctx, g)
				}
				reason = "its config differs: " + strings.Join(diff, "; ")
			}
		}
		r.Log.Info("replacing guest", "guest", g.Name, "domid", d.ID, "reason", reason)
		if err := r.destroy(ctx, g); err != nil {
			return fmt.Errorf("xen: start guest %q: %w", g.Name, err)
		}
		// The old reader may outlive its domain by a moment; a new boot
		// needs a reader attached to the new console.
		if err := r.stopConsole(g); err != nil {
			return fmt.Errorf("xen: start guest %q: %w", g.Name, err)
		}
	}
	r.Log.Info("creating guest", "guest", g.Name, "config", path)
	if _, err := r.run(ctx, "create", path); err != nil {
		return fmt.Errorf("xen: start guest %q: xl create %s: %w", g.Name, path, err)
	}
	return r.ensureConsole(ctx, g)
}

// LiveDiff compares the running domain's config (`xl list -l`) with g:
// a domain someone re-created by hand with other settings is drift.
func (r *Runtime) LiveDiff(ctx context.Context, g vmctl.GuestSpec) ([]string, error) {
	live, found, err := r.liveConfig(ctx, g.Name)
	if err != nil {
		return nil, err
	}
	if !found {
		return []string{"no such domain"}, nil
	}
	return ConfigDiff(live, g), nil
}

// ConfigDiff lists how a running domain's config differs from g, as
// human-readable "field: live -> wanted" strings.
func ConfigDiff(live DomainConfig, g vmctl.GuestSpec) []string {
	var diff []string
	add := func(field, have, want string) {
		if have != want {
			diff = append(diff, fmt.Sprintf("%s: %q -> %q", field, have, want))
		}
	}
	mem := g.Memory
	if mem == 0 {
		mem = DefaultMemoryMB
	}
	add("type", live.Type, "pvh")
	add("kernel", live.Kernel, g.Kernel)
	add("memory", strconv.FormatInt(live.MaxMemKB/1024, 10)+"MiB", strconv.Itoa(mem)+"MiB")
	add("extra", live.Cmdline, g.Extra)
	var mac, bridge string
	if len(live.NICs) == 1 {
		mac, bridge = live.NICs[0].MAC.String(), live.NICs[0].Bridge
	} else {
		diff = append(diff, fmt.Sprintf("nics: %d -> 1", len(live.NICs)))
	}
	add("mac", mac, g.MAC.String())
	add("bridge", bridge, g.Bridge)
	var disk string
	for _, dk := range live.Disks {
		if dk.Vdev == "xvdb" {
			disk = dk.Target
		}
	}
	add("xvdb", disk, g.Image)
	return diff
}

// Stop implements vmctl.Runtime: `xl destroy`, then end the console
// reader. A guest that does not exist is stopped already.
func (r *Runtime) Stop(ctx context.Context, g vmctl.GuestSpec) error {
	if err := r.destroy(ctx, g); err != nil {
		return fmt.Errorf("xen: stop guest %q: %w", g.Name, err)
	}
	if err := r.stopConsole(g); err != nil {
		return fmt.Errorf("xen: stop guest %q: %w", g.Name, err)
	}
	return nil
}

func (r *Runtime) destroy(ctx context.Context, g vmctl.GuestSpec) error {
	_, err := r.run(ctx, "destroy", g.Name)
	if err == nil {
		r.Log.Info("destroyed guest", "guest", g.Name)
		return nil
	}
	var ee *vmctl.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("xl destroy %s: %w", g.Name, err)
	}
	// xl says "<name> is an invalid domain identifier (rc=-6)" for a
	// domain that is not there; ask xl list rather than trust the wording.
	_, found, lerr := r.find(ctx, g.Name)
	if lerr == nil && !found {
		r.Log.Debug("guest not running", "guest", g.Name)
		return nil
	}
	return fmt.Errorf("xl destroy %s: %w", g.Name, err)
}

func (r *Runtime) consoleArgv(g vmctl.GuestSpec) []string {
	return []string{r.xl(), "console", g.Name}
}

// consolePID returns the pid in the pidfile when that process is still
// our console reader for this guest.
func (r *Runtime) consolePID(g vmctl.GuestSpec) (int, bool) {
	b, err := os.ReadFile(ConsolePIDFile(g))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	return pid, procs.Alive(pid, "console", g.Name)
}

func (r *Runtime) ensureConsole(ctx context.Context, g vmctl.GuestSpec) error {
	if pid, ok := r.consolePID(g); ok {
		r.Log.Debug("console capture running", "guest", g.Name, "pid", pid)
		return nil
	}
	logPath := ConsoleLog(g)
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("xen: console of guest %q: %w", g.Name, err)
	}
	// A marker line separates boots in the appended log.
	_, err = fmt.Fprintf(f, "--- labctl: console of %s from %s ---\n", g.Name, time.Now().UTC().Format(time.RFC3339))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("xen: console of guest %q: %w", g.Name, err)
	}
	pid, err := r.Spawner.Spawn(ctx, r.consoleArgv(g), logPath)
	if err != nil {
		return fmt.Errorf("xen: console of guest %q: %w", g.Name, err)
	}
	if err := procs.WriteFileAtomic(ConsolePIDFile(g), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		return fmt.Errorf("xen: console of guest %q: %w", g.Name, err)
	}
	r.Log.Info("capturing console", "guest", g.Name, "pid", pid, "log", logPath)
	return nil
}

func (r *Runtime) stopConsole(g vmctl.GuestSpec) error {
	b, err := os.ReadFile(ConsolePIDFile(g))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("console pidfile: %w", err)
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
		grace := r.ConsoleGrace
		if grace == 0 {
			grace = 2 * time.Second
		}
		if err := stopProcess(pid, grace, "console", g.Name); err != nil {
			return fmt.Errorf("console reader: %w", err)
		}
	}
	if err := os.Remove(ConsolePIDFile(g)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("console pidfile: %w", err)
	}
	return nil
}
