package main

import (
	"log/slog"
	"net"
	"os/exec"
	"testing"

	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/internal/testenv"
)

func exec_(name string, args ...string) ([]byte, error) {
	return exec.Command(name, args...).CombinedOutput()
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

func testenvTool(t *testing.T, names ...string) { testenv.RequireTool(t, names...) }

func guestMAC(t *testing.T, ns string) net.HardwareAddr {
	t.Helper()
	var mac net.HardwareAddr
	labtest.InNetns(t, ns, func() {
		ifc, err := net.InterfaceByName("eth0")
		if err != nil {
			t.Errorf("eth0 in %s: %v", ns, err)
			return
		}
		mac = ifc.HardwareAddr
	})
	return mac
}
