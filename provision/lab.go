package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/netsetup"
	"github.com/labctl/labctl/statedir"
	"github.com/labctl/labctl/vmctl"
	"github.com/vishvananda/netlink"
)

// Options opens a lab's dom0 side.
type Options struct {
	Spec      Spec
	StateRoot string // statedir.DefaultRoot when empty
	Log       *slog.Logger
	NoResolv  bool
	// Enter, when set, runs f on an OS thread inside dom0's network
	// namespace: labctl itself runs in another one (the sim's host side)
	// and enters dom0 for each step instead of starting an agent there.
	// Only provision and teardown are written for it (each step, each
	// undo and each guest stop enters dom0 on a thread of its own);
	// deploy's and status's probes dial from goroutines of their own,
	// which would not be in dom0. Nil: this process is in dom0.
	Enter func(f func() error) error
	// ReadOnly opens the lab for a command that changes nothing (status,
	// doctor, a plan): no state directory, lock, journal or cache is
	// created or written, and the lock is shared, so readers run side by
	// side and wait for a writer instead of failing "busy".
	ReadOnly bool
	// ReaderWait bounds how long a reader waits for a writer (deploy,
	// provision) to finish; zero means DefaultReaderWait.
	ReaderWait time.Duration
}

// DefaultReaderWait is how long status waits for a running deploy or
// provision: a deploy of 250 guests takes seconds, a unikernel build
// minutes, and then status says whom it waited for.
const DefaultReaderWait = 30 * time.Second

// CheckStateRoot refuses a state root whose paths dnsmasq would read
// differently: the lab's dnsmasq/ files are named in its config
// (netsetup.CheckConfPath says which characters and lengths).
func CheckStateRoot(root string) error { return netsetup.CheckConfPath(root) }

// StateDir is the lab's state directory under root.
func StateDir(root, lab string) string { return statedir.Layout{Root: root, Lab: lab}.Dir() }

// EnsureStateDir creates the lab's state directory. It is 0711: others
// may traverse it to reach the dnsmasq/ subdirectory that dnsmasq (running
// as nobody) re-reads, but not list it; everything secret sits in 0700
// subdirectories as 0600 files.
func EnsureStateDir(root, lab string) (string, error) {
	dir := StateDir(root, lab)
	_, statErr := os.Lstat(dir)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		return "", fmt.Errorf("creating state directory: %w", err)
	}
	if err := os.Chmod(dir, 0o711); err != nil {
		return "", fmt.Errorf("state directory: %w", err)
	}
	if errors.Is(statErr, os.ErrNotExist) {
		// We made it: say so, so that down may later remove the
		// directory itself and not only our entries in it.
		if err := os.WriteFile(filepath.Join(dir, OwnerMark), []byte("made by labctl; removed with the lab by labctl down\n"), 0o644); err != nil {
			return "", fmt.Errorf("state directory %s: %w", dir, err)
		}
	}
	return dir, nil
}

// OwnerMark is the file EnsureStateDir writes into a state directory it
// created: proof that the directory is labctl's.
const OwnerMark = ".labctl-state"

// stateEntries are the names labctl creates in a lab's state directory;
// RemoveState deletes these and nothing else.
var stateEntries = map[string]bool{
	OwnerMark: true, "lock": true, JournalFile: true, legacyJournalFile: true,
	"dnsmasq": true, "guests": true, "images": true, "users": true,
	"ssh": true, "vagrant": true, "confirm": true,
	statedir.SpecFile:      true, // the spec of the last provision (lab.go, result)
	statedir.RulesSeenFile: true, // the rules the nat step read last (labctl before 2026-12-06)
	"build":                true, // the xen runtime's unikernel build (provision/xen.go)
}

// RemoveState removes the lab's state directory as far as labctl made it
// (issue 10 item 1): only the entries labctl creates, and only when a
// mark, a journal or a lock shows the directory is a lab's; the directory
// itself goes only when labctl made it and nothing else is left. keep
// names entries to spare (users, when the user's data stays). It returns
// what it left that is not labctl's, for the caller to report.
func RemoveState(root, lab string, keep func(name string) bool) (left []string, err error) {
	dir := StateDir(root, lab)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("state directory %s: %w", dir, err)
	}
	ours := false
	for _, e := range ents {
		switch e.Name() {
		case OwnerMark, JournalFile, legacyJournalFile, "lock":
			ours = true
		}
	}
	var marked bool
	for _, e := range ents {
		name := e.Name()
		if !ours || !stateEntries[name] {
			left = append(left, filepath.Join(dir, name))
			continue
		}
		if name == OwnerMark {
			marked = true
			continue // last: it proves the directory is ours
		}
		if keep != nil && keep(name) {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, name)); err != nil {
			return left, fmt.Errorf("removing %s: %w", filepath.Join(dir, name), err)
		}
	}
	if marked && len(left) == 0 {
		rest, err := os.ReadDir(dir)
		if err == nil && len(rest) == 1 {
			if err := os.Remove(filepath.Join(dir, OwnerMark)); err != nil {
				return nil, fmt.Errorf("removing %s: %w", dir, err)
			}
			if err := os.Remove(dir); err != nil {
				return nil, fmt.Errorf("removing %s: %w", dir, err)
			}
		}
	}
	return left, nil
}

// Open prepares dom0 for one command: state directory, exclusive lock
// (two labctl runs never interleave their changes), journal, netlink.
// Call the returned close function when done.
func Open(o Options) (*Dom0, func(), error) {
	var (
		dir  string
		lock *os.File
		err  error
	)
	if o.ReadOnly {
		dir = StateDir(o.StateRoot, o.Spec.Lab)
		lock, err = readerLock(dir, o)
	} else {
		if dir, err = EnsureStateDir(o.StateRoot, o.Spec.Lab); err != nil {
			return nil, nil, err
		}
		lock, err = writerLock(dir, o.Spec.Lab)
	}
	if err != nil {
		return nil, nil, err
	}
	unlock := func() {
		if lock != nil {
			lock.Close()
		}
	}
	d := &Dom0{network: network{
		Spec: o.Spec, Sysctl: netsetup.ProcSys{}, IPT: netsetup.NewSystem(), StateDir: dir,
		Log: o.Log, NoResolv: o.NoResolv, enter: o.Enter, readOnly: o.ReadOnly,
	}}
	// The journal is stamped with dom0's namespace, and netlink sockets
	// stay in the namespace they were opened in.
	err = d.in(func() (err error) {
		if d.Journal, err = openJournal(dir, o.Spec.Lab, o.ReadOnly); err != nil {
			return err
		}
		if d.NL, err = netlink.NewHandle(); err != nil {
			return fmt.Errorf("netlink: %w", err)
		}
		return nil
	})
	if err != nil {
		unlock()
		return nil, nil, err
	}
	if d.Log == nil {
		d.Log = slog.New(slog.DiscardHandler)
	}
	d.Runtimes = map[string]vmctl.Runtime{}
	for name, a := range runtimeAdapters {
		d.Runtimes[name] = a.New(d)
	}
	return d, func() { d.NL.Close(); unlock() }, nil
}

// writerLock takes the lab's lock exclusively: two labctl runs never
// interleave their changes, and the second says so. It waits up to
// writerGrace first: a labctl killed with SIGKILL can leave a child
// caught between fork and exec (a guest, dnsmasq: their own sessions,
// so a kill of labctl's group does not reach them) holding a copy of
// the lock until its exec closes it, and a run started in that instant
// must not fail for it (the fault suite met it under load).
func writerLock(dir, lab string) (*os.File, error) {
	lock, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	busy, err := flockWait(lock, syscall.LOCK_EX, writerGrace, nil)
	if err != nil {
		return nil, err
	}
	if busy {
		return nil, fmt.Errorf("lab %s is busy: another labctl holds %s", lab, lock.Name())
	}
	return lock, nil
}

// flockWait takes how (LOCK_EX or LOCK_SH) on f, trying every 20 ms for
// up to wait; waiting, if set, is called once when the first try finds
// the lock taken. busy means wait ran out; f is then closed, as on error.
func flockWait(f *os.File, how int, wait time.Duration, waiting func()) (busy bool, err error) {
	deadline := time.Now().Add(wait)
	for first := true; ; first = false {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return false, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return false, fmt.Errorf("locking %s: %w", f.Name(), err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return true, nil
		}
		if first && waiting != nil {
			waiting()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writerGrace is how long a writer waits for the lock before "busy".
const writerGrace = 3 * time.Second

// readerLock takes the lab's lock shared, waiting up to o.ReaderWait for
// a writer to finish. A lab that was never provisioned has no lock file:
// there is nothing to protect and nothing is created (nil, nil).
func readerLock(dir string, o Options) (*os.File, error) {
	lock, err := os.Open(filepath.Join(dir, "lock"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock file: %w", err)
	}
	wait := o.ReaderWait
	if wait <= 0 {
		wait = DefaultReaderWait
	}
	busy, err := flockWait(lock, syscall.LOCK_SH, wait, func() {
		if o.Log != nil {
			o.Log.Info("waiting for another labctl to finish changing the lab", "lab", o.Spec.Lab, "lock", lock.Name())
		}
	})
	if err != nil {
		return nil, err
	}
	if busy {
		return nil, fmt.Errorf("lab %s is busy: another labctl has been changing it for over %s (it holds %s); try again when it ends", o.Spec.Lab, wait, lock.Name())
	}
	return lock, nil
}

// Provision converges dom0 (or, with plan, lists what would change).
func (d *Dom0) Provision(ctx context.Context, plan bool, emit func(StepResult)) Result {
	mode := ModeApply
	if plan {
		mode = ModePlan
	}
	steps, err := Run(ctx, d.Steps(), mode, emit)
	r := d.result("provision", steps, err)
	r.Plan = plan
	if err == nil && !plan {
		// What was applied, for status without -f and for the record.
		if werr := procs.WriteFileAtomic(statedir.Of(d.StateDir).Spec(), d.Spec.YAML(), 0o600); werr != nil {
			r.OK, r.Error = false, werr.Error()
		}
	}
	return r
}

// Deploy converges the network, then the guests.
func (d *Dom0) Deploy(ctx context.Context, in DeployInput, plan bool, emit func(StepResult)) DeployResult {
	mode := ModeApply
	if plan {
		mode = ModePlan
	}
	steps, err := Run(ctx, guestSteps{d}.DeploySteps(in, plan), mode, emit)
	r := DeployResult{Result: d.result("deploy", steps, err), Guests: d.guestStatuses(steps)}
	r.Plan = plan
	if a := d.adapter(); plan && a.Plan != nil {
		p, perr := a.Plan(d, guestSteps{d}.desiredGuests(guestSteps{d}.withKernel(in)))
		if b, err := json.Marshal(p); perr == nil && err == nil {
			if string(b) != "null" {
				r.RuntimePlans = map[string]json.RawMessage{a.PlanKey: b}
			}
		} else {
			r.OK, r.Error = false, errors.Join(perr, err).Error()
		}
	}
	return r
}

// Status observes every step (and the deployed guests) and reports drift;
// it changes nothing.
func (d *Dom0) Status(ctx context.Context, emit func(StepResult)) GuestsResult {
	all := d.Steps()
	if gs, _ := ReadGuests(d.StateDir); len(gs) > 0 {
		// Desired guests are those of the spec with what was last
		// deployed (the host re-sends the image on deploy, not status).
		all = guestSteps{d}.DeploySteps(DeployInput{Image: gs[0].Image, ImageSHA: gs[0].ImageSHA, Kernel: gs[0].Kernel}, true)
	}
	steps, err := Run(ctx, all, ModePlan, emit)
	r := GuestsResult{Result: d.result("status", steps, err), Guests: d.guestStatuses(steps)}
	if r.OK && len(r.Drift) > 0 {
		r.OK = false
		r.Error = ErrDrift.Error()
		if !d.applied() {
			r.Error = ErrNotProvisioned.Error()
		}
	}
	return r
}

// applied says whether labctl has anything applied on dom0: a journal
// entry, a deployed guest or the spec a provision wrote (teardown
// removes all three).
func (d *Dom0) applied() bool {
	if len(d.Journal.List()) > 0 {
		return true
	}
	if gs, _ := ReadGuests(d.StateDir); len(gs) > 0 {
		return true
	}
	_, err := os.Stat(statedir.Of(d.StateDir).Spec())
	return err == nil
}

// TeardownResult undoes the journal and reports each undo.
func (d *Dom0) TeardownResult(ctx context.Context, emit func(StepResult)) Result {
	steps, err := d.Teardown(ctx, emit)
	if err == nil {
		// Nothing is applied any more.
		if rerr := os.Remove(statedir.Of(d.StateDir).Spec()); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = rerr
		}
	}
	return d.result("teardown", steps, err)
}

// guestStatuses reads each deployed guest's state from its step's items.
func (d *Dom0) guestStatuses(steps []StepResult) []GuestStatus {
	gs, _ := ReadGuests(d.StateDir)
	ports := d.guestPorts()
	var out []GuestStatus
	for _, g := range gs {
		st := GuestStatus{Name: g.Name, MAC: g.MAC.String(), IP: g.IP.String(), URL: g.URL(), State: "unknown", Port: ports.of(g.MAC.String())}
		for _, s := range steps {
			if s.Step != GuestStep(g.Name) {
				continue
			}
			for _, it := range s.Items {
				switch it.Name {
				case "state":
					st.State = it.Observed
				case "probe from dom0":
					st.Healthy = it.OK
				}
			}
		}
		out = append(out, st)
	}
	return out
}

func (d *Dom0) result(cmd string, steps []StepResult, err error) Result {
	r := Result{Schema: SchemaVersion, Command: cmd, Lab: d.Spec.Lab, OK: err == nil, Steps: steps}
	if steps == nil {
		r.Steps = []StepResult{}
	}
	if err != nil {
		r.Error = err.Error()
	}
	for _, s := range steps {
		if s.Status == StatusChanged {
			r.Changed = true
		}
		for _, it := range s.Items {
			if !it.OK && (s.Status == StatusPlanned || s.Status == StatusFailed) {
				r.Drift = append(r.Drift, s.Step+": "+it.String())
			}
		}
	}
	return r
}
