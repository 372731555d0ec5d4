package provision

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labctl/labctl/doctor"
	"github.com/labctl/labctl/service/check"
)

// healthDial sends a dial for up to a loopback server that answers the
// health contract; any other address is refused, as a guest that is down
// would be.
func healthDial(t *testing.T, up string) check.DialFunc {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(check.HealthStatus)
		w.Write([]byte(check.HealthBody))
	}))
	t.Cleanup(srv.Close)
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if addr != up {
			return nil, errors.New("connect: connection refused")
		}
		var d net.Dialer
		return d.DialContext(ctx, network, srv.Listener.Addr().String())
	}
}

func TestDiagnose(t *testing.T) {
	spec, err := ParseSpec(DefaultSpecYAML(), "defaults")
	if err != nil {
		t.Fatal(err)
	}
	spec.Guests.Runtime = "process" // no interactive console: FixDeploy
	dom0OK := func(g string) doctor.Finding {
		return doctor.Finding{Layer: doctor.LayerGuest, Check: doctor.CheckProbeDom0, Subject: g, Status: doctor.StatusOK}
	}
	dom0Fail := func(g string) doctor.Finding {
		return doctor.Finding{Layer: doctor.LayerGuest, Check: doctor.CheckProbeDom0, Subject: g, Status: doctor.StatusFail}
	}
	hostFail := doctor.Finding{Layer: doctor.LayerHost, Check: doctor.CheckHostOnlyAddress, Status: doctor.StatusFail,
		Fix: "sudo ip netns exec lab-host ip link set vboxnet4 up"}
	guests := []GuestStatus{{Name: "a", IP: "192.168.77.10", Healthy: true}, {Name: "b", IP: "192.168.77.11", Healthy: true}}
	tests := []struct {
		name string
		in   Diagnosis
		// want: "check/subject=status fix" per finding, in order.
		want []string
	}{{
		name: "agent unreachable",
		in:   Diagnosis{AgentErr: errors.New("no such namespace"), ReachFix: "labctl sim up"},
		want: []string{"agent/=fail labctl sim up"},
	}, {
		name: "agent made no checks",
		in:   Diagnosis{Dom0: GuestsResult{Result: Result{Error: "spec: bad"}}},
		want: []string{"agent/=fail "},
	}, {
		name: "both reach the first guest, nobody the second",
		in: Diagnosis{Dom0: GuestsResult{Guests: guests}, Remote: []doctor.Finding{dom0OK("a"), dom0Fail("b")},
			Dial: healthDial(t, "192.168.77.10:8088")},
		want: []string{"probe-dom0/a=ok ", "guest-path/a=ok ", "probe-dom0/b=fail ", "guest-path/b=fail " + FixDeploy},
	}, {
		name: "sim: dom0 reaches it, the host does not, the host's end is down",
		in: Diagnosis{Host: []doctor.Finding{hostFail}, Dom0: GuestsResult{Guests: guests[:1]}, Remote: []doctor.Finding{dom0OK("a")},
			Dial: healthDial(t, "none"), Sim: true},
		want: []string{doctor.CheckHostOnlyAddress + "/=fail " + hostFail.Fix, "probe-dom0/a=ok ", "guest-path/a=fail " + hostFail.Fix},
	}, {
		name: "VirtualBox: dom0 reaches it, the host does not",
		in: Diagnosis{Dom0: GuestsResult{Guests: guests[:1]}, Remote: []doctor.Finding{dom0OK("a")},
			Dial: healthDial(t, "none"), VM: "labctl-dom0"},
		want: []string{"probe-dom0/a=ok ", "guest-path/a=fail VBoxManage controlvm labctl-dom0 nicpromisc2 allow-all"},
	}, {
		name: "a finding of a guest the result does not list comes last",
		in: Diagnosis{Dom0: GuestsResult{Guests: guests[:1]}, Remote: []doctor.Finding{dom0OK("ghost"), dom0OK("a")},
			Dial: healthDial(t, "192.168.77.10:8088")},
		want: []string{"probe-dom0/a=ok ", "guest-path/a=ok ", "probe-dom0/ghost=ok "},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.in.Spec = spec
			var got []string
			for _, f := range Diagnose(context.Background(), tt.in) {
				got = append(got, f.Check+"/"+f.Subject+"="+string(f.Status)+" "+f.Fix)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
