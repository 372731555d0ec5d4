package vbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
)

// VBox is the narrow read-only view of VirtualBox labctl needs.
type VBox interface {
	Version(ctx context.Context) (Version, error)
	// ShowVMInfo is `showvminfo VM --machinereadable`.
	ShowVMInfo(ctx context.Context, vm string) (MachineInfo, error)
	// NICLines are the "NIC N:" lines of the human-readable `showvminfo VM`.
	NICLines(ctx context.Context, vm string) ([]NICLine, error)
	HostOnlyIfs(ctx context.Context) ([]HostOnlyIf, error)
	HostOnlyNets(ctx context.Context) ([]HostOnlyNet, error)
	DHCPServers(ctx context.Context) ([]DHCPServer, error)
}

// ErrVMNotFound is returned when VirtualBox has no VM of that name or UUID.
var ErrVMNotFound = errors.New("VirtualBox VM not found")

// Runner runs a command and returns its output. ExecRunner is the real one;
// tests supply their own.
type Runner interface {
	Run(ctx context.Context, name string, args ...string) (stdout, stderr []byte, err error)
}

// ExecRunner runs commands with os/exec.
type ExecRunner struct{}

// Run runs name with args, killing it when ctx ends.
func (ExecRunner) Run(ctx context.Context, name string, args ...string) ([]byte, []byte, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

// Manager implements VBox by running VBoxManage.
type Manager struct {
	run  Runner
	path string
	log  *slog.Logger
}

var _ VBox = (*Manager)(nil)

// New returns a Manager running path through run; an empty path is
// VBoxManage where Vagrant would find it (FindVBoxManage: PATH, and on
// Windows VBOX_INSTALL_PATH / VBOX_MSI_INSTALL_PATH), else "VBoxManage".
func New(run Runner, path string, log *slog.Logger) *Manager {
	if path == "" {
		path = FindVBoxManage(os.Getenv, runtime.GOOS)
	}
	if path == "" {
		path = "VBoxManage"
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{run: run, path: path, log: log}
}

func (m *Manager) exec(ctx context.Context, args ...string) (string, error) {
	m.log.DebugContext(ctx, "run", "cmd", m.path, "args", args)
	out, errb, err := m.run.Run(ctx, m.path, args...)
	if err != nil {
		msg := strings.TrimSpace(string(errb))
		if strings.Contains(msg, "VBOX_E_OBJECT_NOT_FOUND") || strings.Contains(msg, "Could not find a registered machine") {
			return "", fmt.Errorf("%s %s: %w: %s", m.path, strings.Join(args, " "), ErrVMNotFound, firstLine(msg))
		}
		return "", fmt.Errorf("%s %s: %w: %s", m.path, strings.Join(args, " "), err, firstLine(msg))
	}
	return string(out), nil
}

// Version runs `VBoxManage --version`.
func (m *Manager) Version(ctx context.Context) (Version, error) {
	out, err := m.exec(ctx, "--version")
	if err != nil {
		return Version{}, err
	}
	v, err := ParseVersion(out)
	if err != nil {
		return Version{}, fmt.Errorf("%s --version: %w", m.path, err)
	}
	return v, nil
}

// ShowVMInfo runs `VBoxManage showvminfo VM --machinereadable`.
func (m *Manager) ShowVMInfo(ctx context.Context, vm string) (MachineInfo, error) {
	out, err := m.exec(ctx, "showvminfo", vm, "--machinereadable")
	if err != nil {
		return MachineInfo{}, err
	}
	mi, err := ParseMachineReadable(out)
	if err != nil {
		return mi, fmt.Errorf("VM %q: %w", vm, err)
	}
	return mi, nil
}

// NICLines runs the human-readable `VBoxManage showvminfo VM`.
func (m *Manager) NICLines(ctx context.Context, vm string) ([]NICLine, error) {
	out, err := m.exec(ctx, "showvminfo", vm)
	if err != nil {
		return nil, err
	}
	nics, err := ParseNICLines(out)
	if err != nil {
		return nil, fmt.Errorf("VM %q: %w", vm, err)
	}
	return nics, nil
}

// HostOnlyIfs runs `VBoxManage list hostonlyifs`.
func (m *Manager) HostOnlyIfs(ctx context.Context) ([]HostOnlyIf, error) {
	out, err := m.exec(ctx, "list", "hostonlyifs")
	if err != nil {
		return nil, err
	}
	return ParseHostOnlyIfs(out)
}

// HostOnlyNets runs `VBoxManage list hostonlynets` (VirtualBox 7+).
func (m *Manager) HostOnlyNets(ctx context.Context) ([]HostOnlyNet, error) {
	out, err := m.exec(ctx, "list", "hostonlynets")
	if err != nil {
		return nil, err
	}
	return ParseHostOnlyNets(out)
}

// DHCPServers runs `VBoxManage list dhcpservers`.
func (m *Manager) DHCPServers(ctx context.Context) ([]DHCPServer, error) {
	out, err := m.exec(ctx, "list", "dhcpservers")
	if err != nil {
		return nil, err
	}
	return ParseDHCPServers(out)
}
