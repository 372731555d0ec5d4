package provision

import (
	"strings"
	"testing"

	"github.com/labctl/labctl/vmctl"
)

func TestRuntimeRegistry(t *testing.T) {
	if got := strings.Join(RuntimeNames(), ","); got != "process,xen" {
		t.Errorf("RuntimeNames() = %s, want process,xen (the ones labctl ships)", got)
	}
	for _, a := range []RuntimeAdapter{{}, {New: func(*Dom0) vmctl.Runtime { return nil }}} {
		name := "xen"
		if a.New == nil {
			name = "no-new"
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("registering %q (New set: %v) did not panic", name, a.New != nil)
				}
			}()
			RegisterRuntime(name, a)
		}()
	}
	s := Default()
	s.Xen.XL = "/usr/sbin/xl"
	if got := ConsoleCommand(s, "xen", "auth-1"); strings.Join(got, " ") != "/usr/sbin/xl console auth-1" {
		t.Errorf("xen console = %q, want xl console auth-1", got)
	}
	if got := ConsoleCommand(s, "process", "auth-1"); got != nil {
		t.Errorf("process console = %q, want none (its console.log is followed)", got)
	}
	s.Guests.Runtime = "qemu"
	err := s.Validate()
	if err == nil || !strings.Contains(err.Error(), "guests.runtime") || !strings.Contains(err.Error(), "process (the simulated lab's guests) or xen") {
		t.Errorf("an unregistered runtime: %v, want guests.runtime named with the registered ones", err)
	}
}
