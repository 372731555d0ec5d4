package doctor

import (
	"context"
	"errors"
	"testing"
)

func TestCheckHostLayer(t *testing.T) {
	found := func(string) (string, error) { return "/usr/bin/VBoxManage", nil }
	missing := func(string) (string, error) { return "", errors.New("not found") }
	// VBox has no VM name, so CheckHost stops at its config ("host" fails)
	// before it runs VBoxManage: the finding says CheckHost was chosen.
	tests := []struct {
		name  string
		layer HostLayer
		want  string // check=status of the only finding
	}{
		{"vagrant checks VirtualBox even where VBoxManage is missing", HostLayer{Kind: HostVirtualBox, LookPath: missing}, "host=fail"},
		{"ssh checks VirtualBox where it is installed", HostLayer{Kind: HostUnknown, LookPath: found}, "host=fail"},
		{"ssh without VirtualBox says what was not checked", HostLayer{Kind: HostUnknown, LookPath: missing}, "virtualbox=warn"},
		{"local runs on dom0", HostLayer{Kind: HostLocal, LookPath: missing}, "virtualbox=ok"},
		{"sim without its namespaces is not up", HostLayer{Kind: HostSim, Sim: SimHostConfig{HostNS: "labctl-test-no-such-ns"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := CheckHostLayer(context.Background(), tt.layer)
			if tt.layer.Kind == HostSim {
				// The sim's "simulated" finding, then the missing host.
				if len(fs) != 2 || fs[0].Check != "simulated" || fs[1].Check != CheckHostOnlyAddress ||
					fs[1].Status != StatusFail || fs[1].Fix != "labctl sim up" {
					t.Errorf("findings = %+v", fs)
				}
				return
			}
			if len(fs) != 1 || fs[0].Check+"="+string(fs[0].Status) != tt.want {
				t.Errorf("findings = %+v, want one %s", fs, tt.want)
			}
		})
	}
}
