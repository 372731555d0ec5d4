package vmctl

import (
	"context"
	"net"
	"net/netip"
)

// GuestSpec is everything a runtime needs to boot one guest.
type GuestSpec struct {
	Lab      string
	Name     string           // guest name, unique in the lab ("auth-1")
	Index    int              // 1-based; the dom0 end of its link is vif<Index>.0
	MAC      net.HardwareAddr // 00:16:3e + 3 bytes from lab/guest name
	IP       netip.Addr       // the address pinned for it in dnsmasq
	Bridge   string           // dom0 bridge the guest's vif joins
	Kernel   string           // absolute path of the guest's kernel/binary
	Image    string           // absolute path of the users image (xvdb)
	StateDir string           // per-guest directory: config, pidfile, console log
	Memory   int              // MiB (xen)
	Extra    string           // boot arguments (xen extra=)
	Port     int              // the service's TCP port (8088)
}

// GuestState is what a runtime observes about one guest.
type GuestState struct {
	Name    string
	Running bool
	ID      int    // domid or pid; 0 when not running
	State   string // runtime's own word: "running", "blocked", "crashed", "stopped", ...
}

// Runtime boots and stops guests. Implementations: xen (xl) and process
// (the reference guest in its own netns, the sim's stand-in for a domU).
type Runtime interface {
	Name() string
	Start(ctx context.Context, g GuestSpec) error
	Stop(ctx context.Context, g GuestSpec) error // not running is success
	State(ctx context.Context, g GuestSpec) (GuestState, error)
}

// LiveDiffer is a Runtime that can compare a running guest's actual
// configuration with the wanted one (xen: `xl list -l`).
type LiveDiffer interface {
	LiveDiff(ctx context.Context, g GuestSpec) ([]string, error)
}
