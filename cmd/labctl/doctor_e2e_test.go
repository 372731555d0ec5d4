package main

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/labctl/doctor"
	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/vmctl"
)

func regexpLine(s, re string) bool { return regexp.MustCompile("(?m)" + re).MatchString(s) }

func doctorOf(t *testing.T, out, errOut string) doctorReport {
	t.Helper()
	var d doctorReport
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatalf("doctor output is not JSON: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	if d.Schema != provision.SchemaVersion || d.Command != "doctor" {
		t.Fatalf("doctor report header: %+v", d)
	}
	return d
}

func findFinding(d doctorReport, layer, check, subject string) *doctor.Finding {
	for i, f := range d.Findings {
		if string(f.Layer) == layer && f.Check == check && f.Subject == subject {
			return &d.Findings[i]
		}
	}
	return nil
}

func runDoctor(t *testing.T, l *labtest.Lab, spec string) (doctorReport, int) {
	t.Helper()
	out, errOut, code := l.Run("doctor", "--target", "sim", "--json", "-f", spec)
	return doctorOf(t, out, errOut), code
}

// applyFix runs a finding's fix the way a user would paste it: labctl
// commands with this lab's binary, `sudo ip netns exec …` and `kill PID`.
func applyFix(t *testing.T, l *labtest.Lab, fix string) {
	t.Helper()
	words := strings.Fields(fix)
	switch {
	case len(words) > 1 && words[0] == "labctl":
		l.MustRun(words[1:]...)
	case len(words) > 4 && words[0] == "sudo" && words[1] == "ip" && words[2] == "netns" && words[3] == "exec":
		labtest.Exec(t, words[4], words[5:]...)
	case len(words) == 2 && words[0] == "kill":
		pid, err := strconv.Atoi(words[1])
		if err != nil {
			t.Fatalf("fix %q: %v", fix, err)
		}
		if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
			t.Fatalf("fix %q: %v", fix, err)
		}
		if !eventually(5*time.Second, func() bool { return !procs.Alive(pid) }) {
			t.Fatalf("fix %q: process still alive", fix)
		}
	default:
		t.Fatalf("fix %q: not a command this test knows how to run", fix)
	}
}

// TestDoctorFaults breaks a deployed sim lab one way at a time, checks
// that doctor names the fault with the expected meaning, runs the fix it
// prints, and checks that the finding is gone.
func TestDoctorFaults(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	spec := fastSpec(t, "")
	deployJSON(t, l, "-f", spec)
	dom0, host := l.Dom0NS(), l.HostNS()
	provisionFix := fmt.Sprintf("labctl provision --target sim --lab %s --file %s", l.Name, spec)

	d, code := runDoctor(t, l, spec)
	if code != 0 || !d.OK || doctor.Worst(d.Findings) != doctor.StatusOK {
		t.Fatalf("healthy lab: exit %d, findings %+v", code, d.Findings)
	}
	for _, layer := range []doctor.Layer{doctor.LayerHost, doctor.LayerDom0, doctor.LayerGuest} {
		n := 0
		for _, f := range d.Findings {
			if f.Layer == layer {
				n++
			}
		}
		if n == 0 {
			t.Fatalf("healthy lab: no %s finding", layer)
		}
	}
	for _, c := range []string{"guest-state", "lease", "arp", "probe-dom0", "guest-path"} {
		if findFinding(d, "guest", c, "auth-1") == nil {
			t.Fatalf("healthy lab: no guest/%s for auth-1", c)
		}
	}

	var rogue *exec.Cmd
	type want struct {
		layer, check, subject string
		status                doctor.Status
		meaning, fix          string // substrings; fix "" = do not care
	}
	faults := []struct {
		name   string
		inject func(t *testing.T)
		want   []want
		apply  string             // the finding (layer/check) whose fix is run
		repair func(t *testing.T) // instead of a fix (warn-only faults)
	}{
		{name: "dnsmasq killed",
			inject: func(t *testing.T) {
				pid := procs.ReadPidfile(filepath.Join(l.StateDir(), "dnsmasq", "dnsmasq.pid"))
				syscall.Kill(pid, syscall.SIGKILL)
				if !eventually(5*time.Second, func() bool { return !procs.Alive(pid) }) {
					t.Fatal("dnsmasq did not die")
				}
			},
			want:  []want{{"dom0", "dnsmasq", "", doctor.StatusFail, "no DHCP on br0", provisionFix}},
			apply: "dom0/dnsmasq"},
		{name: "FORWARD policy DROP without labctl's jump",
			inject: func(t *testing.T) {
				labtest.Exec(t, dom0, "iptables", "-P", "FORWARD", "DROP")
				labtest.Exec(t, dom0, "iptables", "-D", "FORWARD", "-m", "comment", "--comment", "labctl:"+l.Name, "-j", "LABCTL-FWD")
			},
			want:  []want{{"dom0", "forward-policy", "", doctor.StatusFail, "Docker or firewalld set the policy", provisionFix}},
			apply: "dom0/forward-policy"},
		{name: "Docker's chains",
			inject: func(t *testing.T) { labtest.Exec(t, dom0, "iptables", "-N", "DOCKER-USER") },
			want: []want{{"dom0", "docker-firewalld", "", doctor.StatusWarn, "Docker sets FORWARD's policy to DROP", provisionFix},
				// The policy is still DROP from the previous fault, but
				// labctl's jump (restored by its fix) comes first.
				{"dom0", "forward-policy", "", doctor.StatusOK, "", ""}},
			repair: func(t *testing.T) { labtest.Exec(t, dom0, "iptables", "-X", "DOCKER-USER") }},
		{name: "rogue DHCP server on br0",
			inject: func(t *testing.T) {
				dir := t.TempDir()
				rogue = exec.Command("dnsmasq", "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
					"--interface=br0", "--except-interface=lo", "--bind-dynamic", "--user=root",
					"--dhcp-range=192.168.77.210,192.168.77.220,2m",
					"--dhcp-leasefile="+filepath.Join(dir, "rogue.leases"), "--pid-file="+filepath.Join(dir, "rogue.pid"))
				if err := (vmctl.Netns{Name: dom0}).Start(rogue); err != nil {
					t.Fatal(err)
				}
				// One Wait, which also reaps it when the fix kills it.
				exited := make(chan struct{})
				go func() { rogue.Wait(); close(exited) }()
				t.Cleanup(func() { rogue.Process.Kill(); <-exited })
				if !eventually(5*time.Second, func() bool {
					return strings.Contains(labtest.Exec(t, dom0, "ss", "-lunp", "sport = :67"), fmt.Sprintf("pid=%d,", rogue.Process.Pid))
				}) {
					t.Fatal("rogue dnsmasq does not listen on :67")
				}
			},
			want:  []want{{"dom0", "dhcp-dns-conflict", "", doctor.StatusFail, "guests may take its lease", "kill "}},
			apply: "dom0/dhcp-dns-conflict"},
		{name: "guest killed",
			inject: func(t *testing.T) {
				pid := guestPid(t, l, "auth-1")
				syscall.Kill(pid, syscall.SIGKILL)
				if !eventually(5*time.Second, func() bool { return !procs.Alive(pid) }) {
					t.Fatal("guest did not die")
				}
			},
			want: []want{
				{"guest", "guest-state", "auth-1", doctor.StatusFail, "not running", "labctl deploy --target sim --lab " + l.Name},
				{"guest", "probe-dom0", "auth-1", doctor.StatusFail, "dom0 itself cannot talk", ""},
				{"guest", "guest-path", "auth-1", doctor.StatusFail, "dom0 itself cannot reach the guest", "labctl deploy --target sim"},
			},
			apply: "guest/guest-state"},
		{name: "eth1 out of br0: the host fails where dom0 passes",
			inject: func(t *testing.T) { labtest.Exec(t, dom0, "ip", "link", "set", "eth1", "nomaster") },
			want: []want{
				{"guest", "probe-dom0", "auth-1", doctor.StatusOK, "", ""},
				{"guest", "guest-path", "auth-1", doctor.StatusFail, "the VirtualBox layer drops it", provisionFix},
				{"dom0", "uplink", "", doctor.StatusFail, "while dom0 still can", provisionFix},
			},
			apply: "guest/guest-path"},
		{name: "vboxnet4 down: the host fails where dom0 passes",
			inject: func(t *testing.T) { labtest.Exec(t, host, "ip", "link", "set", vmctl.SimHostIf, "down") },
			want: []want{
				{"host", "hostonly-address", "", doctor.StatusFail, "host's end of the host-only network is down", "sudo ip netns exec " + host + " ip link set vboxnet4 up"},
				{"guest", "probe-dom0", "auth-1", doctor.StatusOK, "", ""},
				{"guest", "guest-path", "auth-1", doctor.StatusFail, "the VirtualBox layer drops it", "sudo ip netns exec " + host + " ip link set vboxnet4 up"},
			},
			apply: "guest/guest-path"},
		{name: "br0 deleted",
			inject: func(t *testing.T) { labtest.Exec(t, dom0, "ip", "link", "delete", "br0") },
			want:   []want{{"dom0", "bridge", "", doctor.StatusFail, "no bridge to plug their vif into", provisionFix}},
			// Last: the fix brings back the bridge, not the guest's vif.
		},
	}
	for _, fl := range faults {
		ok := t.Run(fl.name, func(t *testing.T) {
			fl.inject(t)
			d, code := runDoctor(t, l, spec)
			wantCode := 0
			for _, w := range fl.want {
				f := findFinding(d, w.layer, w.check, w.subject)
				if f == nil {
					t.Fatalf("no %s/%s %s finding in %+v", w.layer, w.check, w.subject, d.Findings)
				}
				if f.Status != w.status || !strings.Contains(f.Meaning, w.meaning) || (w.fix != "" && !strings.HasPrefix(f.Fix, w.fix)) {
					t.Fatalf("%s/%s: got %+v\nwant status %s, meaning ~%q, fix %q…", w.layer, w.check, f, w.status, w.meaning, w.fix)
				}
				if f.Status == doctor.StatusFail {
					wantCode = exitFail
				}
			}
			if code != wantCode || d.OK != (wantCode == 0) {
				t.Fatalf("exit %d, ok %v; want exit %d", code, d.OK, wantCode)
			}
			switch {
			case fl.repair != nil:
				fl.repair(t)
			case fl.apply != "":
				layer, check, _ := strings.Cut(fl.apply, "/")
				var f *doctor.Finding
				for _, w := range fl.want {
					if w.layer == layer && w.check == check {
						f = findFinding(d, layer, check, w.subject)
					}
				}
				applyFix(t, l, f.Fix)
			default:
				return
			}
			// Fixed: doctor passes again.
			var after doctorReport
			if !eventually(10*time.Second, func() bool {
				var code int
				after, code = runDoctor(t, l, spec)
				return code == 0 && doctor.Worst(after.Findings) != doctor.StatusFail
			}) {
				t.Fatalf("after the fix, doctor still fails: %+v", after.Findings)
			}
		})
		if !ok {
			break // later faults assume this one was repaired
		}
	}
}
