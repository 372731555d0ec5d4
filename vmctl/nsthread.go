package vmctl

import (
	"errors"
	"fmt"
	"runtime"

	"github.com/vishvananda/netns"
)

// inNetns runs f on a fresh goroutine whose OS thread entered the named
// namespace. Sockets f creates and processes it forks stay in that
// namespace. The thread goes back to labctl's namespace afterwards; if
// that fails it stays locked and the runtime discards it with the
// goroutine, so no other goroutine ever runs in the wrong namespace.
func inNetns(name string, f func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", name, err)
	}
	defer target.Close()
	return onNetnsThread(func() error {
		if err := netns.Set(target); err != nil {
			return fmt.Errorf("entering %s: %w", name, err)
		}
		return nil
	}, f)
}

// onNetnsThread runs enter and then f on a fresh goroutine locked to its
// OS thread, and puts the thread back into labctl's namespace after. If
// enter fails, f does not run. If going back fails the thread stays locked
// and the runtime discards it with the goroutine.
func onNetnsThread(enter, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("current network namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := enter(); err != nil {
			// A failed setns or unshare leaves the thread where it was.
			runtime.UnlockOSThread()
			errc <- err
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- errors.Join(ferr, fmt.Errorf("returning to labctl's namespace: %w", err))
			return // locked: the thread ends with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
