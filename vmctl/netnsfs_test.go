package vmctl

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/labctl/labctl/internal/testenv"
)

// TestAddDelNetns: in-process namespaces are what ip netns makes: listed
// by `ip netns`, usable by `ip netns exec`, a namespace of their own, and
// removed without a trace; both are idempotent, and a file left by a
// create killed before its mount is replaced.
func TestAddDelNetns(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireTool(t, "ip")
	name := fmt.Sprintf("lctest-nsfs-%d", os.Getpid())
	path := filepath.Join(netnsDir, name)
	t.Cleanup(func() { delNetns(name) })

	for i := range 2 {
		if err := addNetns(name); err != nil {
			t.Fatalf("add #%d: %v", i+1, err)
		}
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil || !strings.Contains(string(out), name) {
		t.Fatalf("ip netns list: %v\n%s", err, out)
	}
	var ours, theirs unix.Stat_t
	if err := unix.Stat("/proc/thread-self/ns/net", &ours); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(path, &theirs); err != nil {
		t.Fatal(err)
	}
	if ours.Ino == theirs.Ino {
		t.Fatal("the new namespace is labctl's own")
	}
	// Our own thread came back.
	var after unix.Stat_t
	unix.Stat("/proc/thread-self/ns/net", &after)
	if after.Ino != ours.Ino {
		t.Fatal("the calling thread changed namespace")
	}
	links, err := exec.Command("ip", "netns", "exec", name, "ip", "-o", "link").CombinedOutput()
	if err != nil || strings.Count(strings.TrimSpace(string(links)), "\n") != 0 || !strings.Contains(string(links), "lo:") {
		t.Fatalf("a fresh namespace has only lo: %v\n%s", err, links)
	}

	for i := range 2 {
		if err := delNetns(name); err != nil {
			t.Fatalf("delete #%d: %v", i+1, err)
		}
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("%s left: %v", path, err)
	}

	// A create killed between the file and its mount.
	if err := os.WriteFile(path, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := addNetns(name); err != nil {
		t.Fatalf("add over a stale file: %v", err)
	}
	if !isNsfs(path) {
		t.Fatal("the stale file was kept")
	}
	if err := delNetns(name); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, nil, 0); err != nil {
		t.Fatal(err)
	}
	if err := delNetns(name); err != nil {
		t.Fatalf("delete of a stale file: %v", err)
	}
	if _, err := os.Lstat(path); !os.IsNotExist(err) {
		t.Fatalf("stale %s left: %v", path, err)
	}
	for _, bad := range []string{"", ".", "..", "a/b"} {
		if err := addNetns(bad); err == nil {
			t.Errorf("addNetns(%q) succeeded", bad)
		}
		if err := delNetns(bad); err == nil {
			t.Errorf("delNetns(%q) succeeded", bad)
		}
	}
}
