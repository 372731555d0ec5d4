package provision

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// dnsmasq rewrites its lease file in place: truncate, then buffered
// writes. A reader racing it must get all the leases, or (the instant
// after the truncate) none, or an error — never a part of them.
func TestReadLeasesTornRewrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dnsmasq.leases")
	const n = 200
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "%d 00:16:3e:00:%02x:%02x 192.168.77.%d auth-%d *\n", 2000000000, i/256, i%256, 3+i%250, i+1)
	}
	content := b.String()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	done := make(chan error, 1)
	go func() {
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			done <- err
			return
		}
		defer f.Close()
		for !stop.Load() {
			// As dnsmasq's lease_update_file: rewind, truncate, write in
			// 4 KiB pieces (stdio), cut mid-line.
			if err := f.Truncate(0); err != nil {
				done <- err
				return
			}
			for off := 0; off < len(content); off += 4096 {
				if _, err := f.WriteAt([]byte(content[off:min(off+4096, len(content))]), int64(off)); err != nil {
					done <- err
					return
				}
				time.Sleep(50 * time.Microsecond)
			}
			time.Sleep(2 * leaseSettle)
		}
		done <- nil
	}()
	var full, empty, errs int
	for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); {
		ls, err := readLeases(path, true)
		switch {
		case err != nil:
			// Only if every retry met a rewrite (a slow, loaded
			// machine): the caller looks again, it takes no lease.
			errs++
		case len(ls) == n:
			full++
		case len(ls) == 0:
			empty++
		default:
			t.Errorf("readLeases returned %d of the %d leases: a torn read taken for the file", len(ls), n)
		}
	}
	stop.Store(true)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if full == 0 {
		t.Fatalf("no read saw the whole file (%d saw it empty, %d gave up)", empty, errs)
	}
}

func TestVerifyReplacesObserve(t *testing.T) {
	var observed, verified int
	have := "old"
	s := Step{
		Name: "k",
		Observe: func(context.Context) ([]Item, error) {
			observed++
			return []Item{ok("k", "new", have)}, nil
		},
		Apply:  func(context.Context, []Item) error { have = "new"; return nil },
		Verify: func(context.Context) ([]Item, error) { verified++; return []Item{ok("k", "new", "new")}, nil },
	}
	rs, err := Run(context.Background(), []Step{s}, ModeApply, nil)
	if err != nil || rs[0].Status != StatusChanged {
		t.Fatalf("Run: %v %+v", err, rs)
	}
	if observed != 1 || verified != 1 {
		t.Fatalf("observed %d times, verified %d: want the apply checked by Verify only", observed, verified)
	}
}

// Between two of dnsmasq's writes the file can be stable, whole as far as
// stat says, and end exactly at a line: only its age tells it from the
// finished file. The clock is held still here so that a busy machine
// (the test descheduled for a few ms) cannot age the file for it.
func TestReadLeasesFreshPrefix(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dnsmasq.leases")
	line := "2000000000 00:16:3e:00:00:01 192.168.77.3 auth-1 *\n"
	if err := os.WriteFile(path, []byte(line), 0o644); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	realClock := leaseClock
	t.Cleanup(func() { leaseClock = realClock })
	for _, tc := range []struct {
		age  time.Duration
		torn bool
	}{
		{0, true},
		{leaseSettle, true}, // not yet past the kernel's tick
		{leaseSettleAge - time.Microsecond, true},
		{leaseSettleAge, false},
	} {
		leaseClock = func() time.Time { return st.ModTime().Add(tc.age) }
		ls, torn, err := readLeasesOnce(path, true)
		if torn != tc.torn || err != nil || (!torn && len(ls) != 1) {
			t.Fatalf("a file %v old: %d leases, torn %v, err %v; want torn %v", tc.age, len(ls), torn, err, tc.torn)
		}
	}
	leaseClock = realClock
	// readLeases waits out the settling of a fresh file.
	if err := os.WriteFile(path, []byte(line+line), 0o644); err != nil {
		t.Fatal(err)
	}
	if ls, err := readLeases(path, true); err != nil || len(ls) != 2 {
		t.Fatalf("readLeases of a file written just now: %d leases, %v; want 2 once settled", len(ls), err)
	}
}
