package doctor

import (
	"context"
	"log/slog"
	"os/exec"

	"github.com/labctl/labctl/vmctl/vbox"
)

// HostOnlyAdapter is dom0's host-only NIC in VirtualBox: the
// Vagrantfile's adapter 2 (adapter 1 is Vagrant's NAT).
const HostOnlyAdapter = 2

// HostKind says what stands between this machine and dom0, and so which
// host checks apply.
type HostKind int

const (
	// HostUnknown: dom0 is reached over SSH and may or may not be a
	// VirtualBox VM here; VirtualBox is checked if it is installed.
	HostUnknown HostKind = iota
	// HostVirtualBox: dom0 is this machine's VirtualBox VM (vagrant).
	HostVirtualBox
	// HostSim: VirtualBox is simulated by a veth between namespaces.
	HostSim
	// HostLocal: labctl runs on dom0 itself.
	HostLocal
)

// HostLayer is the host layer's configuration: Kind picks the checks,
// Sim or VBox configures them.
type HostLayer struct {
	Kind HostKind
	Sim  SimHostConfig // HostSim
	VBox HostConfig    // HostVirtualBox, or any other kind when VBoxManage is found
	// LookPath finds VBoxManage (exec.LookPath unless set).
	LookPath func(string) (string, error)
	Log      *slog.Logger
}

// CheckHostLayer checks the host layer: VirtualBox's checks where
// VirtualBox is (or must be), the simulated host-only link for the sim,
// otherwise one finding saying what was not checked and why.
func CheckHostLayer(ctx context.Context, l HostLayer) []Finding {
	if l.Kind == HostSim {
		return CheckSimHost(l.Sim)
	}
	look := l.LookPath
	if look == nil {
		look = exec.LookPath
	}
	_, vboxErr := look("VBoxManage")
	if l.Kind == HostVirtualBox || vboxErr == nil {
		deps := HostDeps{VBox: vbox.New(vbox.ExecRunner{}, "", l.Log), Net: SystemNet{}, Log: l.Log}
		fs, err := CheckHost(ctx, deps, l.VBox)
		if err != nil {
			return []Finding{{Layer: LayerHost, Check: "host", Status: StatusFail, Detail: err.Error()}}
		}
		return fs
	}
	if l.Kind == HostLocal {
		return []Finding{{Layer: LayerHost, Check: "virtualbox", Status: StatusOK,
			Detail: "--target local: labctl runs on dom0 itself; the host layer is checked from the host (labctl doctor --target vagrant or ssh://…)"}}
	}
	return []Finding{{Layer: LayerHost, Check: "virtualbox", Status: StatusWarn,
		Detail:  "VBoxManage is not on this machine's PATH: the VirtualBox layer was not checked",
		Meaning: "if dom0 is a VirtualBox VM, its host-only adapter, promiscuous policy, nested VT-x and VirtualBox's DHCP server are unchecked; run labctl doctor on the machine that runs VirtualBox"}}
}
