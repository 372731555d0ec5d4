package guest

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// Run in the test process itself (the root namespace here) must refuse
// before reading anything or touching an interface. Where PID 1's netns is
// unreadable, the test process is not in a named netns either, so Run must
// refuse all the same.
func TestRefusesInitNetns(t *testing.T) {
	cur, err := netns.Get()
	if err != nil {
		t.Skipf("no netns handle: %v", err)
	}
	defer cur.Close()
	inInit := true
	if host, err := netns.GetFromPid(1); err == nil {
		inInit = cur.Equal(host)
		host.Close()
	}
	var console strings.Builder
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	err = Run(ctx, Config{ImagePath: "/nonexistent/users.img", Interface: "labctl-none0"}, slog.New(slog.NewTextHandler(io.Discard, nil)), &console)
	if err == nil {
		t.Fatal("Run succeeded without an image or interface")
	}
	if inInit && !strings.Contains(err.Error(), "refusing") {
		t.Fatalf("in the init netns Run said %v", err)
	}
	if !strings.HasPrefix(console.String(), "[   0.000] Guest booting...") {
		t.Fatalf("console %q", console.String())
	}
}

func TestResidentKB(t *testing.T) {
	kb, err := ResidentKB(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if kb < 1000 || kb > 4<<20 {
		t.Fatalf("own VmRSS %d KiB is implausible", kb)
	}
	if _, err := ResidentKB(-1); err == nil {
		t.Fatal("pid -1 has an RSS")
	}
}
