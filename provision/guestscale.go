package provision

import (
	"context"
	"errors"
	"os"
	"runtime"
	"sync"
	"syscall"

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
	err       error
}

// readLeases returns the parsed leases of path; a missing file has none.
func readLeases(path string) ([]netsetup.Lease, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		if errors.Is(err, syscall.ENOENT) {
			return nil, nil
		}
		return nil, err
	}
	leaseFiles.Lock()
	c, ok := leaseFiles.m[path]
	leaseFiles.Unlock()
	if ok && c.ino == int64(st.Ino) && c.size == st.Size && c.mtime == st.Mtim {
		return c.leases, c.err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	ls, perr := netsetup.ParseLeases(b)
	// Cache under the identity seen before the read: a write during the
	// read changes it, and the next look parses again.
	leaseFiles.Lock()
	leaseFiles.m[path] = leaseFile{ino: int64(st.Ino), size: st.Size, mtime: st.Mtim, leases: ls, err: perr}
	leaseFiles.Unlock()
	return ls, perr
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
