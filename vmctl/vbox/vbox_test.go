package vbox

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// scriptRunner answers VBoxManage invocations from recorded outputs.
type scriptRunner struct {
	t       *testing.T
	outputs map[string]string // joined args -> stdout
	stderr  map[string]string // joined args -> stderr of a failing run
	calls   []string
}

func (r *scriptRunner) Run(_ context.Context, name string, args ...string) ([]byte, []byte, error) {
	key := strings.Join(args, " ")
	r.calls = append(r.calls, name+" "+key)
	if e, ok := r.stderr[key]; ok {
		return nil, []byte(e), &exec.ExitError{}
	}
	out, ok := r.outputs[key]
	if !ok {
		r.t.Errorf("unexpected command %s %s", name, key)
		return nil, []byte("unknown command"), errors.New("exit status 2")
	}
	return []byte(out), nil, nil
}

func TestManager(t *testing.T) {
	ctx := context.Background()
	run := &scriptRunner{t: t,
		outputs: map[string]string{
			"--version": readFixture(t, "version-6.0.12-vboxdrv-warning.txt"),
			"showvminfo labctl-dom0 --machinereadable": readFixture(t, "showvminfo-machinereadable-constructed-dom0.txt"),
			"showvminfo labctl-dom0":                   readFixture(t, "showvminfo-human-constructed-dom0-deny.txt"),
			"list hostonlyifs":                         readFixture(t, "list-hostonlyifs-constructed-lab-vboxnet4.txt"),
			"list hostonlynets":                        readFixture(t, "list-hostonlynets-7.0-vagrant.txt"),
			"list dhcpservers":                         readFixture(t, "list-dhcpservers-6.1-two-vagrant.txt"),
		},
		stderr: map[string]string{
			"showvminfo vmaww_shucks --machinereadable": readFixture(t, "showvminfo-error-vm-not-found.txt"),
			"showvminfo broken --machinereadable":       "VBoxManage: error: The object functionality is limited",
		},
	}
	m := New(run, "/usr/bin/VBoxManage", nil)

	v, err := m.Version(ctx)
	if err != nil || v.String() != "6.0.12" {
		t.Fatalf("Version = %v, %v", v, err)
	}
	mi, err := m.ShowVMInfo(ctx, "labctl-dom0")
	if err != nil || mi.Name() != "labctl-dom0" || !mi.Running() {
		t.Fatalf("ShowVMInfo = %+v, %v", mi, err)
	}
	nics, err := m.NICLines(ctx, "labctl-dom0")
	if err != nil || len(nics) != 8 || nics[1].PromiscPolicy != "deny" {
		t.Fatalf("NICLines = %+v, %v", nics, err)
	}
	ifs, err := m.HostOnlyIfs(ctx)
	if err != nil || len(ifs) != 2 || ifs[1].Name != "vboxnet4" {
		t.Fatalf("HostOnlyIfs = %+v, %v", ifs, err)
	}
	nets, err := m.HostOnlyNets(ctx)
	if err != nil || len(nets) != 2 {
		t.Fatalf("HostOnlyNets = %+v, %v", nets, err)
	}
	srvs, err := m.DHCPServers(ctx)
	if err != nil || len(srvs) != 2 {
		t.Fatalf("DHCPServers = %+v, %v", srvs, err)
	}

	_, err = m.ShowVMInfo(ctx, "vmaww_shucks")
	if !errors.Is(err, ErrVMNotFound) || !strings.Contains(err.Error(), "vmaww_shucks") {
		t.Fatalf("missing VM: err = %v, want ErrVMNotFound naming the VM", err)
	}
	_, err = m.ShowVMInfo(ctx, "broken")
	if err == nil || errors.Is(err, ErrVMNotFound) || !strings.Contains(err.Error(), "limited") {
		t.Fatalf("other failure: err = %v, want the stderr and not ErrVMNotFound", err)
	}
	if run.calls[0] != "/usr/bin/VBoxManage --version" {
		t.Errorf("first call = %q", run.calls[0])
	}
}

func TestExecRunner(t *testing.T) {
	// The real runner must hand back stdout and stderr separately.
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	out, errb, err := ExecRunner{}.Run(context.Background(), sh, "-c", "echo out; echo err >&2; exit 3")
	if string(out) != "out\n" || string(errb) != "err\n" {
		t.Fatalf("out=%q err=%q", out, errb)
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("err = %v, want exit 3", err)
	}
}
