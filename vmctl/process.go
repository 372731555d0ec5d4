package vmctl

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/service/guest"
	"github.com/labctl/labctl/statedir"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// GuestMAC is a guest's MAC: Xen's OUI 00:16:3e and three bytes from the
// lab and guest names, so a guest keeps its MAC (and its lease) across
// redeploys and labs do not collide.
func GuestMAC(lab, guest string) net.HardwareAddr {
	h := sha256.Sum256([]byte(lab + "/" + guest))
	// Clear the top bit of the fourth byte: Xen's own tools use
	// 00:16:3e:00-7f:…, leaving the upper half for hand-made guests.
	return net.HardwareAddr{0x00, 0x16, 0x3e, h[0] & 0x7f, h[1], h[2]}
}

// VifName is the dom0 end of guest number index's link, as Xen names it
// (vif<domid>.<devid>); in the sim the index stands in for the domid.
func VifName(index int) string { return fmt.Sprintf("vif%d.0", index) }

// Process is the simulated lab's Runtime: the reference guest (`labctl
// guest run`, GuestSpec.Kernel) in a network namespace of its own, linked
// to dom0's bridge by a veth whose dom0 end is vif<N>.0 — the sim's
// stand-in for a Xen domU and its netfront/netback pair. Its methods run
// in dom0's namespace (the agent).
type Process struct {
	Log *slog.Logger
}

func (*Process) Name() string { return "process" }

func (p *Process) pidfile(g GuestSpec) string { return filepath.Join(g.StateDir, "guest.pid") }
func (p *Process) console(g GuestSpec) string { return filepath.Join(g.StateDir, statedir.ConsoleLog) }
func marker(g GuestSpec) string               { return "--state=" + g.StateDir }

// Start creates the guest's namespace and link if missing and starts the
// guest detached, its console appended to console.log.
func (p *Process) Start(ctx context.Context, g GuestSpec) error {
	ns := GuestNetns(g.Lab, g.Index)
	if err := ensureNetns(ctx, ns); err != nil {
		return err
	}
	if err := p.ensureLink(g, ns); err != nil {
		return err
	}
	if err := os.MkdirAll(g.StateDir, 0o700); err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	con, err := os.OpenFile(p.console(g), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("guest %s console: %w", g.Name, err)
	}
	defer con.Close()
	fmt.Fprintf(con, "--- %s: labctl starts guest %s (mac %s)\n", time.Now().UTC().Format(time.RFC3339Nano), g.Name, g.MAC)
	// The guest gets its config as one typed value in a file; the
	// arguments only name it and mark the process (marker). "guest run"
	// lets the kernel be labctl itself or the small labctl-guest. Not
	// guest.json: that is deploy's record of the guest.
	boot := filepath.Join(g.StateDir, "boot.json")
	if err := guest.WriteBootFile(boot, guest.Boot{
		Config:      guest.Config{ImagePath: g.Image, Interface: "eth0", Port: g.Port, Hostname: g.Name},
		ConsolePath: p.console(g), ConsoleMax: guest.DefaultConsoleMax,
	}); err != nil {
		return fmt.Errorf("guest %s: %w", g.Name, err)
	}
	cmd := exec.Command(g.Kernel, "guest", "run", "--config", boot, marker(g))
	// The guest writes its console itself, capped and rotated; what
	// reaches these (a crash) lands in whichever file holds the inode.
	cmd.Stdout, cmd.Stderr = con, con
	// Its own session: the guest outlives labctl, like a domU outlives xl.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := (Netns{Name: ns}).Start(cmd); err != nil {
		return fmt.Errorf("starting guest %s: %w", g.Name, err)
	}
	pid := cmd.Process.Pid
	// Reap it if it dies while labctl still runs; after that, init does.
	go cmd.Wait()
	if err := os.WriteFile(p.pidfile(g), []byte(strconv.Itoa(pid)+"\n"), 0o600); err != nil {
		return fmt.Errorf("guest %s pidfile: %w", g.Name, err)
	}
	return nil
}

// ensureLink creates vif<N>.0 in dom0 with eth0 (the guest's MAC) in the
// guest's namespace, and plugs vif<N>.0 into the bridge.
func (p *Process) ensureLink(g GuestSpec, ns string) error {
	vif := VifName(g.Index)
	h, err := netlink.NewHandle()
	if err != nil {
		return err
	}
	defer h.Close()
	if _, err := h.LinkByName(vif); err != nil {
		fd, err := nsFD(ns)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		v := &netlink.Veth{
			LinkAttrs:        netlink.LinkAttrs{Name: vif, HardwareAddr: vifMAC(g.MAC)},
			PeerName:         "eth0",
			PeerHardwareAddr: g.MAC,
			PeerNamespace:    netlink.NsFd(fd),
		}
		if err := h.LinkAdd(v); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("creating %s for guest %s: %w", vif, g.Name, err)
		}
	}
	l, err := h.LinkByName(vif)
	if err != nil {
		return fmt.Errorf("%s: %w", vif, err)
	}
	br, err := h.LinkByName(g.Bridge)
	if err != nil {
		return fmt.Errorf("guest %s needs bridge %s: %w", g.Name, g.Bridge, err)
	}
	if l.Attrs().MasterIndex != br.Attrs().Index {
		if err := h.LinkSetMasterByIndex(l, br.Attrs().Index); err != nil {
			return fmt.Errorf("adding %s to %s: %w", vif, g.Bridge, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("setting %s up: %w", vif, err)
	}
	// Bring the guest's end up too, and wait until the bridge port is
	// operational: a guest whose eth0 comes up first sends its
	// DHCPDISCOVER while the bridge still drops the port's frames, and
	// waits a retransmission (0.5 s) for its lease.
	gh, err := HandleAt(ns)
	if err != nil {
		return err
	}
	defer gh.Close()
	for _, name := range []string{"lo", "eth0"} {
		gl, err := gh.LinkByName(name)
		if err != nil {
			return fmt.Errorf("guest %s %s: %w", g.Name, name, err)
		}
		if err := gh.LinkSetUp(gl); err != nil {
			return fmt.Errorf("guest %s: setting %s up: %w", g.Name, name, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		l, err := h.LinkByName(vif)
		if err != nil {
			return fmt.Errorf("%s: %w", vif, err)
		}
		if l.Attrs().OperState == netlink.OperUp {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (guest %s) not operational after 5s: state %s", vif, g.Name, l.Attrs().OperState)
		}
		time.Sleep(time.Millisecond)
	}
}

// vifMAC is the dom0 end's MAC: Xen gives netback fe:ff:ff:ff:ff:ff, which
// a bridge would take as its own lowest-but-one; a locally administered
// variant of the guest's MAC keeps every vif distinct.
func vifMAC(guest net.HardwareAddr) net.HardwareAddr {
	m := append(net.HardwareAddr(nil), guest...)
	m[0] = 0xfe
	return m
}

// Stop stops the guest process and removes its link and namespace.
// A guest that does not exist is success.
func (p *Process) Stop(ctx context.Context, g GuestSpec) error {
	if err := procs.Stop(ctx, procs.ReadPidfile(p.pidfile(g)), marker(g)); err != nil {
		return fmt.Errorf("stopping guest %s: %w", g.Name, err)
	}
	ns := GuestNetns(g.Lab, g.Index)
	if err := KillNetnsProcs(ctx, ns, p.Log); err != nil {
		return err
	}
	if h, err := netlink.NewHandle(); err == nil {
		if l, err := h.LinkByName(VifName(g.Index)); err == nil {
			h.LinkDel(l)
		}
		h.Close()
	}
	os.Remove(p.pidfile(g))
	return DeleteNetns(ctx, ns)
}

// State reports whether the guest process runs.
func (p *Process) State(ctx context.Context, g GuestSpec) (GuestState, error) {
	st := GuestState{Name: g.Name, State: "stopped"}
	pid := procs.ReadPidfile(p.pidfile(g))
	if procs.Alive(pid, marker(g)) {
		st.Running, st.ID, st.State = true, pid, "running"
	}
	return st, nil
}
