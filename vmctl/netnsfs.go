package vmctl

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// Named network namespaces made and removed in-process, the way iproute2's
// `ip netns add` / `ip netns delete` do (ip/ipnetns.c netns_add,
// netns_delete), without a process per call: a deploy of 100 guests spent
// a quarter of its CPU in 200 `ip` processes.

// netnsDir is where named namespaces live, as for ip netns.
const netnsDir = "/run/netns"

var sharedOnce struct {
	sync.Mutex
	done bool
}

// shareNetnsDir makes netnsDir a shared mount point, as netns_add does,
// so a namespace mounted here shows in every mount namespace and an
// unmount in one unmounts it in all.
func shareNetnsDir() error {
	sharedOnce.Lock()
	defer sharedOnce.Unlock()
	if sharedOnce.done {
		return nil
	}
	if err := os.MkdirAll(netnsDir, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", netnsDir, err)
	}
	made := false
	for {
		err := unix.Mount("", netnsDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if err == nil {
			break
		}
		// EINVAL: not a mount point yet. Bind it onto itself, once.
		if !errors.Is(err, unix.EINVAL) || made {
			return fmt.Errorf("making %s a shared mount: %w", netnsDir, err)
		}
		if err := unix.Mount(netnsDir, netnsDir, "none", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("bind-mounting %s onto itself: %w", netnsDir, err)
		}
		made = true
	}
	sharedOnce.done = true
	return nil
}

// addNetns creates the named namespace; one that exists is success.
func addNetns(name string) error {
	if err := checkNetnsName(name); err != nil {
		return err
	}
	if err := shareNetnsDir(); err != nil {
		return err
	}
	path := filepath.Join(netnsDir, name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0)
	if errors.Is(err, os.ErrExist) {
		if isNsfs(path) {
			return nil
		}
		// A file left by a create killed before its mount: not a
		// namespace. Replace it, or every later use fails.
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("creating network namespace %s: stale %s: %w", name, path, err)
		}
		f, err = os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0)
	}
	if err != nil {
		return fmt.Errorf("creating network namespace %s: %w", name, err)
	}
	f.Close()
	// A fresh namespace on a thread of its own, bind-mounted to path;
	// then the thread goes back (or, if it cannot, dies locked).
	err = onNetnsThread(func() error {
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			return fmt.Errorf("unshare: %w", err)
		}
		return nil
	}, func() error {
		return unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, "")
	})
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("creating network namespace %s: %w", name, err)
	}
	return nil
}

// delNetns unmounts and removes the named namespace; a missing one is
// success. The namespace itself lives on while a process is in it.
func delNetns(name string) error {
	if err := checkNetnsName(name); err != nil {
		return err
	}
	path := filepath.Join(netnsDir, name)
	if _, err := os.Lstat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("deleting network namespace %s: unmount: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("deleting network namespace %s: %w", name, err)
	}
	return nil
}

// isNsfs reports whether path is a namespace file (a bind mount of nsfs).
func isNsfs(path string) bool {
	var st unix.Statfs_t
	return unix.Statfs(path, &st) == nil && st.Type == unix.NSFS_MAGIC
}

func checkNetnsName(name string) error {
	if name == "" || name == "." || name == ".." || filepath.Base(name) != name {
		return fmt.Errorf("network namespace name %q: expected a plain file name", name)
	}
	return nil
}
