package vmctl

import (
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
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("entering %s: %w", name, err)
			return
		}
		ferr := f()
		if err := netns.Set(orig); err != nil {
			errc <- fmt.Errorf("leaving %s: %w (after: %v)", name, err, ferr)
			return // locked: the thread ends with this goroutine
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}
