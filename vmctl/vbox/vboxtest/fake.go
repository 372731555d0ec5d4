// Package vboxtest holds a fake vbox.VBox for tests of vbox's consumers;
// it is imported only from _test.go files, so it never ships in labctl.
package vboxtest

import (
	"context"
	"fmt"

	"github.com/labctl/labctl/vmctl/vbox"
)

// Fake is an in-memory VBox holding raw VBoxManage outputs (typically
// recorded fixtures) and parsing them with the real parsers, so a test of
// a consumer also exercises the parsing. A missing VM yields vbox.ErrVMNotFound;
// Err fails the named method ("Version", "ShowVMInfo", "NICLines",
// "HostOnlyIfs", "HostOnlyNets", "DHCPServers").
type Fake struct {
	VersionOut      string
	MachineReadable map[string]string // VM name -> --machinereadable output
	Human           map[string]string // VM name -> human-readable output
	HostOnlyIfsOut  string
	HostOnlyNetsOut string
	DHCPServersOut  string
	Err             map[string]error
}

var _ vbox.VBox = (*Fake)(nil)

func (f *Fake) fail(method string) error {
	if err := f.Err[method]; err != nil {
		return fmt.Errorf("fake VBoxManage %s: %w", method, err)
	}
	return nil
}

// Version parses VersionOut.
func (f *Fake) Version(context.Context) (vbox.Version, error) {
	if err := f.fail("Version"); err != nil {
		return vbox.Version{}, err
	}
	return vbox.ParseVersion(f.VersionOut)
}

// ShowVMInfo parses MachineReadable[vm].
func (f *Fake) ShowVMInfo(_ context.Context, vm string) (vbox.MachineInfo, error) {
	if err := f.fail("ShowVMInfo"); err != nil {
		return vbox.MachineInfo{}, err
	}
	out, ok := f.MachineReadable[vm]
	if !ok {
		return vbox.MachineInfo{}, fmt.Errorf("showvminfo %q: %w", vm, vbox.ErrVMNotFound)
	}
	return vbox.ParseMachineReadable(out)
}

// NICLines parses Human[vm].
func (f *Fake) NICLines(_ context.Context, vm string) ([]vbox.NICLine, error) {
	if err := f.fail("NICLines"); err != nil {
		return nil, err
	}
	out, ok := f.Human[vm]
	if !ok {
		return nil, fmt.Errorf("showvminfo %q: %w", vm, vbox.ErrVMNotFound)
	}
	return vbox.ParseNICLines(out)
}

// HostOnlyIfs parses HostOnlyIfsOut.
func (f *Fake) HostOnlyIfs(context.Context) ([]vbox.HostOnlyIf, error) {
	if err := f.fail("HostOnlyIfs"); err != nil {
		return nil, err
	}
	return vbox.ParseHostOnlyIfs(f.HostOnlyIfsOut)
}

// HostOnlyNets parses HostOnlyNetsOut.
func (f *Fake) HostOnlyNets(context.Context) ([]vbox.HostOnlyNet, error) {
	if err := f.fail("HostOnlyNets"); err != nil {
		return nil, err
	}
	return vbox.ParseHostOnlyNets(f.HostOnlyNetsOut)
}

// DHCPServers parses DHCPServersOut.
func (f *Fake) DHCPServers(context.Context) ([]vbox.DHCPServer, error) {
	if err := f.fail("DHCPServers"); err != nil {
		return nil, err
	}
	return vbox.ParseDHCPServers(f.DHCPServersOut)
}
