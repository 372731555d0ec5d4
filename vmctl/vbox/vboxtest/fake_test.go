package vboxtest_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/vmctl/vbox"
	"github.com/labctl/labctl/vmctl/vbox/vboxtest"
)

func readFixture(t testing.TB, name string) string {
	return string(testenv.ReadFile(t, "../testdata", name))
}

func TestFake(t *testing.T) {
	ctx := context.Background()
	f := &vboxtest.Fake{
		VersionOut:      "7.0.14r161095\n",
		MachineReadable: map[string]string{"dom0": readFixture(t, "showvminfo-machinereadable-constructed-dom0.txt")},
		Human:           map[string]string{"dom0": readFixture(t, "showvminfo-human-constructed-dom0-allow-all.txt")},
		Err:             map[string]error{"DHCPServers": errors.New("boom")},
	}
	if _, err := f.ShowVMInfo(ctx, "other"); !errors.Is(err, vbox.ErrVMNotFound) {
		t.Errorf("unknown VM: %v", err)
	}
	if _, err := f.NICLines(ctx, "other"); !errors.Is(err, vbox.ErrVMNotFound) {
		t.Errorf("unknown VM: %v", err)
	}
	if _, err := f.DHCPServers(ctx); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("injected error: %v", err)
	}
	if v, err := f.Version(ctx); err != nil || !v.RestrictsHostOnlyRanges() {
		t.Errorf("Version = %v, %v", v, err)
	}
}
