package provision

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/labctl/vmctl"
)

// startFails is a runtime whose Start always fails with err.
type startFails struct {
	err    error
	starts atomic.Int32
}

func (r *startFails) Name() string { return "startfails" }
func (r *startFails) Start(context.Context, vmctl.GuestSpec) error {
	r.starts.Add(1)
	return r.err
}
func (r *startFails) Stop(context.Context, vmctl.GuestSpec) error { return nil }
func (r *startFails) State(context.Context, vmctl.GuestSpec) (vmctl.GuestState, error) {
	return vmctl.GuestState{}, nil
}

// A boot that fails because the lab's own state cannot be written is not
// retried until the deadline: no other boot mends a full disk. Any other
// failure is retried.
func TestApplyGuestGivesUpOnFullDisk(t *testing.T) {
	full := &fs.PathError{Op: "write", Path: "guest.json", Err: syscall.ENOSPC}
	for _, tc := range []struct {
		name  string
		err   error
		retry bool
	}{
		{"full disk", full, false},
		{"full disk, wrapped", fmt.Errorf("writing the record: %w", full), false},
		{"quota", &fs.PathError{Op: "write", Path: "x", Err: syscall.EDQUOT}, false},
		{"read-only", &fs.PathError{Op: "open", Path: "x", Err: syscall.EROFS}, false},
		{"other", errors.New("the hypervisor said no"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			j, err := OpenJournal(dir, "lab")
			if err != nil {
				t.Fatal(err)
			}
			rt := &startFails{err: tc.err}
			d := guestSteps{&Dom0{
				network: network{Spec: Spec{Lab: "lab"}, StateDir: dir, Journal: j,
					Log: slog.New(slog.NewTextHandler(io.Discard, nil))},
				Runtimes: map[string]vmctl.Runtime{rt.Name(): rt},
			}}
			g := GuestRecord{Name: "auth-1", Runtime: rt.Name(), StateDir: filepath.Join(dir, "guests", "auth-1"),
				MAC: MAC{0x00, 0x16, 0x3e, 0, 0, 1}, IP: netip.MustParseAddr("192.168.77.3")}
			// Long enough for several boots at the 100 ms backoff.
			_, err = d.applyGuest(context.Background(), g, time.Now().Add(time.Second))
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want it to wrap %v", err, tc.err)
			}
			if n := rt.starts.Load(); (n > 1) != tc.retry {
				t.Fatalf("%d boots for %v (retry wanted: %v)", n, tc.err, tc.retry)
			}
		})
	}
}
