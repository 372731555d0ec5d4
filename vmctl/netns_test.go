package vmctl

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/labctl/labctl/internal/testenv"
)

// Inside Do, the thread is in the namespace (sockets, /proc/sys/net and
// children follow it); after Do, the caller's thread is where it was.
func TestNetnsDo(t *testing.T) {
	testenv.RequireRoot(t)
	name := fmt.Sprintf("labctl-do-%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v\n%s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	var st syscall.Stat_t
	if err := syscall.Stat("/run/netns/"+name, &st); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("net:[%d]", st.Ino)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	own, _ := os.Readlink("/proc/thread-self/ns/net")

	n := Netns{Name: name}
	var inside, child string
	var lo []byte
	err := n.Do(func() (err error) {
		inside, _ = os.Readlink("/proc/thread-self/ns/net")
		// A fresh namespace has only lo, down: /proc/net/dev is the
		// thread's namespace's.
		lo, _ = os.ReadFile("/proc/thread-self/net/dev")
		out, err := exec.CommandContext(context.Background(), "readlink", "/proc/self/ns/net").Output()
		child = string(out)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if inside != want || child != want+"\n" {
		t.Errorf("inside Do: thread in %s, child in %q; want %s", inside, child, want)
	}
	if n := strings.Count(string(lo), "\n"); n != 3 { // two header lines and lo
		t.Errorf("/proc/thread-self/net/dev inside Do has %d lines, want 3:\n%s", n, lo)
	}
	if after, _ := os.Readlink("/proc/thread-self/ns/net"); after != own || after == want {
		t.Errorf("after Do the caller's thread is in %s, want %s", after, own)
	}
	if err := (Netns{Name: name + "-missing"}).Do(func() error { return nil }); err == nil {
		t.Error("Do in a missing namespace succeeded")
	}
}
