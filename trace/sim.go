package trace

import (
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/labctl/labctl/netsetup"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/vmctl"
)

// ConfigFor is the path to one deployed guest as the spec describes it.
func ConfigFor(spec provision.Spec, g provision.GuestRecord, from string) (Config, error) {
	if !g.IP.IsValid() || g.MAC.IsZero() {
		return Config{}, fmt.Errorf("guest %s record: no ip or mac: redeploy it", g.Name)
	}
	if from != "host" && from != "dom0" {
		return Config{}, fmt.Errorf("--from %q: expected host or dom0", from)
	}
	c := Config{Guest: g.Name, MAC: g.MAC.HardwareAddr(), IP: g.IP, Port: g.Port, Subnet: spec.Subnet(), From: from,
		HostIf: vmctl.SimHostIf, Uplink: spec.Network.Uplink, Bridge: spec.Network.Bridge,
		Promiscuous: spec.Network.Promiscuous, NAT: spec.Network.NAT}
	host, _, _ := vmctl.SimNames(spec.Lab)
	c.HostCmd = "sudo ip netns exec " + host + " "
	if sg, ok := provision.SimGuestOf(spec.Lab, g); ok {
		c.Vif = sg.Vif
	}
	return c, nil
}

// FindGuest reads the lab's guest records and returns the named one.
func FindGuest(stateDir, name string) (provision.GuestRecord, error) {
	gs, err := provision.ReadGuests(stateDir)
	if err != nil {
		return provision.GuestRecord{}, err
	}
	var names []string
	for _, g := range gs {
		if g.Name == name {
			return g, nil
		}
		names = append(names, g.Name)
	}
	return provision.GuestRecord{}, fmt.Errorf("no guest %q deployed in %s (deployed: %v): run labctl deploy", name, stateDir, names)
}

// SimEnv observes the simulated lab from this machine: netlink handles
// opened in <lab>-host and <lab>-dom0, iptables-save run inside dom0,
// the guest's own namespace for the outgoing probe (towards the WAN
// namespace's address, port 9: nothing listens, the refusal is the answer).
// Call close when done.
func SimEnv(spec provision.Spec, stateDir string, g provision.GuestRecord, c Config) (Env, func(), error) {
	host, dom0, _ := vmctl.SimNames(spec.Lab)
	hh, err := vmctl.HandleAt(host)
	if err != nil {
		return Env{}, nil, fmt.Errorf("simulated host %s: %w", host, err)
	}
	dh, err := vmctl.HandleAt(dom0)
	if err != nil {
		hh.Close()
		return Env{}, nil, fmt.Errorf("simulated dom0 %s: %w", dom0, err)
	}
	from := host
	if c.From == "dom0" {
		from = dom0
	}
	e := Env{Config: c, HostNL: hh, Dom0NL: dh, Dom0: vmctl.Netns{Name: dom0},
		LeasePath: netsetup.DnsmasqConfig{Dir: filepath.Join(stateDir, "dnsmasq")}.LeasePath(),
		Probe:     vmctl.DialIn(from),
		OutTarget: net.JoinHostPort(vmctl.SimWANGw.Addr().String(), strconv.Itoa(9)),
		Timeout:   3 * time.Second,
	}
	if sg, ok := provision.SimGuestOf(spec.Lab, g); ok {
		e.GuestDial = vmctl.DialIn(sg.Netns)
		e.GuestState = sg.State
	}
	return e, func() { hh.Close(); dh.Close() }, nil
}
