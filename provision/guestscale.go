package provision

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/labctl/labctl/netsetup"
)

// What keeps a deploy of many guests steady on a small, busy machine:
// every guest waits for its lease at once, so the lease file is parsed
// once per change, not once per guest per poll; guests boot a few at a
// time; and guests go away side by side.

// leaseFiles caches each lease file's parse by its identity (inode, size,
// modification time). dnsmasq rewrites the file in place: any write
// changes size or time, so a torn read is replaced on the next look.
var leaseFiles = struct {
	sync.Mutex
	m map[string]leaseFile
}{m: map[string]leaseFile{}}

type leaseFile struct {
	ino, size int64
	mtime     syscall.Timespec
	leases    []netsetup.Lease
}

// leaseSettle is how long after its last write the lease file is taken
// as finished: between two of dnsmasq's buffered writes a stable file can
// end exactly at a line and parse, yet hold only the first leases.
// dnsmasq's whole rewrite takes microseconds.
const leaseSettle = 5 * time.Millisecond

// The kernel stamps mtime from the coarse clock (current_time(), one
// jiffy of granularity: 4 ms at HZ=250, 10 ms at HZ=100), so a file
// written just now can look a tick old against time.Now. The age is
// therefore read on that same coarse clock and must pass leaseSettle plus
// one tick: then at least leaseSettle has really gone by. (CI met the
// naive form: a file a millisecond old taken as settled.)
var leaseClock = func() time.Time {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_REALTIME_COARSE, &ts) != nil {
		return time.Now()
	}
	return time.Unix(ts.Unix())
}

// leaseSettleAge is leaseSettle plus the coarse clock's tick.
var leaseSettleAge = func() time.Duration {
	var ts unix.Timespec
	tick := 10 * time.Millisecond // HZ=100, the coarsest common kernel
	if unix.ClockGetres(unix.CLOCK_REALTIME_COARSE, &ts) == nil && ts.Nano() > 0 {
		tick = time.Duration(ts.Nano())
	}
	return leaseSettle + tick
}()

// readLeases returns the parsed leases of path; a missing file has none.
// dnsmasq rewrites the file in place (truncate, then buffered writes), so
// a read can be torn: it is trusted only when the file's identity is the
// same before and after it, all of it was read, it parses and, if settled
// is asked for, it was last written leaseSettleAge ago; otherwise it is
// read again, a millisecond later, for twice leaseSettleAge.
func readLeases(path string, settled bool) ([]netsetup.Lease, error) {
	var err error
	// Look again a millisecond apart until the file has had time to
	// settle twice over (at least 8 looks, however busy the machine).
	deadline := time.Now().Add(2 * leaseSettleAge)
	for try := 0; try < 8 || time.Now().Before(deadline); try++ {
		if try > 0 {
			time.Sleep(time.Millisecond)
		}
		var ls []netsetup.Lease
		var torn bool
		if ls, torn, err = readLeasesOnce(path, settled); !torn {
			return ls, err
		}
		if err == nil {
			err = fmt.Errorf("lease file %s: changed while read (dnsmasq rewriting it)", path)
		}
	}
	return nil, err
}

func leaseFileID(path string) (leaseFile, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		return leaseFile{}, err
	}
	return leaseFile{ino: int64(st.Ino), size: st.Size, mtime: st.Mtim}, nil
}

func (a leaseFile) sameFile(b leaseFile) bool {
	return a.ino == b.ino && a.size == b.size && a.mtime == b.mtime
}

// readLeasesOnce reads path once; torn says the read cannot be trusted.
// Only settled files are cached, so a cached parse is always a whole one.
func readLeasesOnce(path string, settled bool) (ls []netsetup.Lease, torn bool, err error) {
	before, err := leaseFileID(path)
	if errors.Is(err, syscall.ENOENT) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("lease file %s: %w", path, err)
	}
	leaseFiles.Lock()
	c, ok := leaseFiles.m[path]
	leaseFiles.Unlock()
	if ok && c.sameFile(before) {
		return c.leases, false, nil
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, true, nil // replaced under us: look again
	}
	if err != nil {
		return nil, false, fmt.Errorf("lease file %s: %w", path, err)
	}
	after, err := leaseFileID(path)
	if err != nil || !after.sameFile(before) || int64(len(b)) != before.size {
		return nil, true, nil
	}
	ls, perr := netsetup.ParseLeases(b)
	if perr != nil {
		// Stable yet unparsable: dnsmasq may be between two of its
		// buffered writes (a cut last line). Look again; reported if
		// it stays so.
		return nil, true, fmt.Errorf("lease file %s: %w", path, perr)
	}
	if leaseClock().Sub(time.Unix(before.mtime.Unix())) < leaseSettleAge {
		if settled {
			return nil, true, nil // maybe between two writes: look again
		}
		return ls, false, nil
	}
	before.leases = ls
	leaseFiles.Lock()
	leaseFiles.m[path] = before
	leaseFiles.Unlock()
	return ls, false, nil
}

// bootSlots bounds how many guests are stopped and started at once: a
// start is a process, a namespace and links, and a hundred at once on two
// cores starve the health checks of the guests already up. Waiting for
// the lease and the probe is not bounded.
var bootSlots = make(chan struct{}, max(4, 2*runtime.NumCPU()))

func withBootSlot(ctx context.Context, f func() error) error {
	select {
	case bootSlots <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-bootSlots }()
	return f()
}

// parallelGuests runs f for each guest, at most limit at a time, and
// returns every error.
func parallelGuests(ctx context.Context, gs []GuestRecord, limit int, f func(context.Context, GuestRecord) error) error {
	sem := make(chan struct{}, limit)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for _, g := range gs {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return errors.Join(append(errs, ctx.Err())...)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(ctx, g); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
