package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/vmctl"
)

// sshLab is a simulated lab whose dom0 runs a real sshd (sim up --sshd);
// labctl runs inside <lab>-host and reaches dom0 over SSH as a user's
// labctl reaches the Vagrant VM.
type sshLab struct {
	*labtest.Lab
	sshd     vmctl.SimSSHD
	agent    string // the linux/amd64 labctl put on dom0
	dom0Root string // --dom0-state-dir
}

func newSSHLab(t *testing.T) *sshLab {
	t.Helper()
	testenv.RequireRoot(t)
	if _, err := vmctl.SSHDBinary(); err != nil {
		testenv.RequireTool(t, "sshd")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l := labtest.New(t, "ls", exe, "LABCTL_TEST_AS_CLI=1")
	l.MustRun("sim", "up", "--sshd")
	s := &sshLab{Lab: l, agent: buildAgent(t),
		// Inside the lab's state directory, so that labtest's leak check
		// also covers what the agent starts there (dnsmasq, guests).
		dom0Root: filepath.Join(l.StateDir(), "dom0")}
	_, dom0, _ := vmctl.SimNames(l.Name)
	s.sshd = vmctl.SimSSHD{Netns: dom0, Dir: filepath.Join(l.StateDir(), "ssh")}
	if s.sshd.Pid() == 0 {
		t.Fatalf("sim up --sshd: no sshd running in %s; log:\n%s", dom0, readFile(t, filepath.Join(s.sshd.Dir, "sshd.log")))
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sshd log:\n%s", readFile(t, filepath.Join(s.sshd.Dir, "sshd.log")))
		}
	})
	return s
}

// buildAgent builds the real labctl for dom0. The test binary cannot go
// there: over SSH it would not be told to act as labctl, and the process
// runtime starts the agent's own binary as the guest.
func buildAgent(t *testing.T) string {
	t.Helper()
	testenv.RequireTool(t, "go")
	out := filepath.Join(t.TempDir(), "labctl")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build labctl: %v\n%s", err, b)
	}
	return out
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, _ := os.ReadFile(p)
	return string(b)
}

// remote are the flags that point labctl at the simulated dom0's sshd.
func (s *sshLab) remote(extra ...string) []string {
	return append([]string{"--target", "ssh://root@192.168.77.2",
		"--identity", filepath.Join(s.sshd.Dir, "id_ed25519"),
		"--known-hosts", filepath.Join(s.sshd.Dir, "known_hosts"),
		"--dom0-state-dir", s.dom0Root, "--agent-binary", s.agent}, extra...)
}

// runHost runs labctl inside <lab>-host, as a user on the host would.
func (s *sshLab) runHost(args ...string) (stdout, stderr string, code int) {
	s.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{"netns", "exec", s.HostNS(), s.Exe}, args...)
	full = append(full, "--lab", s.Name, "--state-dir", s.StateRoot)
	cmd := exec.CommandContext(ctx, "ip", full...)
	cmd.Env = append(os.Environ(), "LABCTL_TEST_AS_CLI=1")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			s.T.Fatalf("labctl %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	return o.String(), e.String(), code
}

func (s *sshLab) mustHost(args ...string) (stdout, stderr string) {
	s.T.Helper()
	out, errOut, code := s.runHost(args...)
	if code != 0 {
		s.T.Fatalf("labctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), code, out, errOut)
	}
	return out, errOut
}

// sessions counts the SSH logins sshd accepted so far.
func (s *sshLab) sessions() int {
	return strings.Count(readFile(s.T.(*testing.T), filepath.Join(s.sshd.Dir, "sshd.log")), "Accepted publickey for root")
}

// resultOf reads a deploy's or status's document (DeployResult holds
// both: the envelope and the guests).
func resultOf(t *testing.T, out, errOut string) provision.DeployResult {
	t.Helper()
	var r provision.DeployResult
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("not a JSON result: %v\nstdout:\n%s\nstderr:\n%s", err, out, errOut)
	}
	return r
}

// eventually retries f for up to d: an sshd session process or a guest
// may take a moment to go away after labctl returns.
func eventually(d time.Duration, f func() bool) bool {
	deadline := time.Now().Add(d)
	for !f() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// From the host namespace, over one SSH connection per run: provision
// (which moves 192.168.77.2, the very address the connection uses, from
// eth1 to br0), deploy, check, status, doctor and teardown.
func TestSSHTargetProvisionDeployCheck(t *testing.T) {
	t.Parallel()
	testenvTool(t, "curl")
	s := newSSHLab(t)
	spec := fastSpec(t, "")
	before := labtest.Snapshot(t, s.Dom0NS())
	runs := 0
	n0 := s.sessions()

	out, errOut := s.mustHost(append([]string{"provision", "--json", "-f", spec}, s.remote()...)...)
	runs += 2 // the run, and its commit-confirm over a new connection
	r := resultOf(t, out, errOut)
	if !r.OK || r.Target != "ssh://root@192.168.77.2" {
		t.Fatalf("provision over SSH: %+v\n%s", r, errOut)
	}
	var address provision.StepResult
	for _, st := range r.Steps {
		if st.Step == "address" {
			address = st
		}
	}
	// The address the SSH connection runs over moved during the run,
	// and the one connection carried the run to its end (sshx never
	// redials: a dropped connection fails the run); a second, new one
	// confirmed that dom0 is still reachable (commit-confirm).
	if address.Status != provision.StatusChanged || !strings.Contains(address.Detail, "eth1 address 192.168.77.2/24: want moved to br0") {
		t.Fatalf("address step %+v: the move did not happen during this run", address)
	}
	if got := s.sessions() - n0; got != 2 {
		t.Fatalf("provision used %d SSH connections, want exactly 2 (the run, the confirmation)", got)
	}
	addrs := labtest.Exec(t, s.Dom0NS(), "ip", "-4", "-br", "addr")
	if !strings.Contains(addrs, "br0") || !regexpLine(addrs, `^br0\s+UP\s+192\.168\.77\.2/24`) || regexpLine(addrs, `^eth1\S*\s+\S+\s+192\.168\.77\.2`) {
		t.Fatalf("dom0 addresses after provision:\n%s", addrs)
	}
	// Progress streamed from dom0 and rendered on the host.
	if !strings.Contains(errOut, "changed  address") || !strings.Contains(errOut, "uploaded labctl to dom0") {
		t.Fatalf("progress on stderr:\n%s", errOut)
	}
	// labctl on dom0: this build, 0755 in a 0700 directory.
	bin := filepath.Join(s.dom0Root, "bin", "labctl")
	assertMode(t, filepath.Dir(bin), 0o700)
	assertMode(t, bin, 0o755)
	if a, b := sha(t, s.agent), sha(t, bin); a != b {
		t.Fatalf("dom0's labctl %s differs from the agent binary %s", b, a)
	}

	// Again: nothing to change, nothing uploaded.
	out, errOut = s.mustHost(append([]string{"provision", "-f", spec}, s.remote()...)...)
	runs += 2
	if !strings.Contains(out, "already converged") || strings.Contains(errOut, "uploaded labctl") {
		t.Fatalf("second provision:\n%s\n%s", out, errOut)
	}

	// deploy: the users image built here goes to dom0's state directory.
	out, errOut = s.mustHost(append([]string{"deploy", "--json", "-f", spec}, s.remote()...)...)
	runs++
	r = resultOf(t, out, errOut)
	if !r.OK || len(r.Guests) != 1 || !r.Guests[0].Healthy || r.Guests[0].HostProbe != "ok" {
		t.Fatalf("deploy over SSH: %+v\n%s", r, errOut)
	}
	img := filepath.Join(s.dom0Root, s.Name, "images", "users.img")
	assertMode(t, filepath.Dir(img), 0o700)
	assertMode(t, img, 0o600)
	if a, b := sha(t, filepath.Join(s.StateDir(), "images", "users.img")), sha(t, img); a != b {
		t.Fatalf("dom0's users image %s differs from the host's %s", b, a)
	}
	gs, err := provision.ReadGuests(filepath.Join(s.dom0Root, s.Name))
	if err != nil || len(gs) != 1 || gs[0].Image != img {
		t.Fatalf("guest record on dom0: %+v %v; want the image at %s", gs, err, img)
	}
	if code, body := curl(t, s.Lab, r.Guests[0].URL+"?user=john&password=password"); code != 200 || body != "hello john!\n" {
		t.Fatalf("curl from the host: %d %q", code, body)
	}

	// check probes from the host itself (labctl runs in <lab>-host).
	out, errOut = s.mustHost(append([]string{"check", "--json", "-f", spec}, s.remote()...)...)
	runs++
	var rep struct{ OK bool }
	if err := json.Unmarshal([]byte(out), &rep); err != nil || !rep.OK {
		t.Fatalf("check over SSH: %v\n%s\n%s", err, out, errOut)
	}
	out, errOut = s.mustHost(append([]string{"status", "--json", "-f", spec}, s.remote()...)...)
	runs++
	if r := resultOf(t, out, errOut); !r.OK || len(r.Guests) != 1 || r.Guests[0].State != "running" {
		t.Fatalf("status over SSH: %+v", r)
	}

	// doctor over SSH: dom0's and the guest's checks pass; the host layer
	// says honestly that VirtualBox was not checked.
	out, errOut, code := s.runHost(append([]string{"doctor", "--json", "-f", spec}, s.remote()...)...)
	runs++
	d := doctorOf(t, out, errOut)
	if code != 0 || !d.OK {
		t.Fatalf("doctor over SSH: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []struct{ layer, check, subject, status string }{
		{"host", "virtualbox", "", "warn"},
		{"dom0", "bridge", "", "ok"},
		{"dom0", "dnsmasq", "", "ok"},
		{"guest", "probe-dom0", "auth-1", "ok"},
		{"guest", "guest-path", "auth-1", "ok"},
	} {
		if f := findFinding(d, want.layer, want.check, want.subject); f == nil || string(f.Status) != want.status {
			t.Errorf("doctor %s/%s %s: %+v, want %s", want.layer, want.check, want.subject, f, want.status)
		}
	}

	// teardown over SSH moves the address back under the connection, and
	// leaves dom0 as it was before the first provision.
	s.mustHost(append([]string{"teardown", "-f", spec}, s.remote()...)...)
	runs++
	var after string
	if !eventually(5*time.Second, func() bool { after = labtest.Snapshot(t, s.Dom0NS()); return after == before }) {
		t.Fatalf("dom0 after teardown over SSH differs from before provision:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if got := s.sessions() - n0; got != runs {
		t.Fatalf("%d labctl runs made %d SSH connections, want one each", runs, got)
	}
}

// A changed host key is refused before anything runs on dom0.
func TestSSHTargetRefusesChangedHostKey(t *testing.T) {
	t.Parallel()
	s := newSSHLab(t)
	before := labtest.Snapshot(t, s.Dom0NS())
	// known_hosts with another key for 192.168.77.2: what labctl sees
	// when the VM was rebuilt — or when someone sits in between.
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	other, _ := ssh.NewPublicKey(priv.Public())
	kh := filepath.Join(t.TempDir(), "known_hosts")
	os.WriteFile(kh, []byte(knownhosts.Line([]string{"192.168.77.2"}, other)+"\n"), 0o600)

	for _, verb := range []string{"provision", "status"} {
		args := append([]string{verb}, s.remote("--known-hosts", kh, "--accept-new-host-key")...)
		_, errOut, code := s.runHost(args...)
		if code != exitFail || !strings.Contains(errOut, "HOST KEY CHANGED for 192.168.77.2") ||
			!strings.Contains(errOut, "nothing was run") || !strings.Contains(errOut, ssh.FingerprintSHA256(other)) {
			t.Fatalf("%s with a changed host key: exit %d\n%s", verb, code, errOut)
		}
	}
	if after := labtest.Snapshot(t, s.Dom0NS()); after != before {
		t.Fatalf("dom0 changed although the host key was refused:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	if _, err := os.Stat(s.dom0Root); !os.IsNotExist(err) {
		t.Fatalf("%s exists: something ran on dom0 (%v)", s.dom0Root, err)
	}
	if n := s.sessions(); n != 0 {
		t.Fatalf("sshd accepted %d logins", n)
	}
	// --accept-new-host-key did not overwrite the known key.
	if got := readFile(t, kh); got != knownhosts.Line([]string{"192.168.77.2"}, other)+"\n" {
		t.Fatalf("known_hosts rewritten:\n%s", got)
	}
}

// First contact is refused unless --accept-new-host-key, which records
// the key (0600); later runs need no flag.
func TestSSHTargetFirstContact(t *testing.T) {
	t.Parallel()
	s := newSSHLab(t)
	kh := filepath.Join(t.TempDir(), "dir", "known_hosts")
	_, errOut, code := s.runHost(append([]string{"status"}, s.remote("--known-hosts", kh)...)...)
	if code != exitFail || !strings.Contains(errOut, "is not in "+kh) || !strings.Contains(errOut, "--accept-new-host-key") {
		t.Fatalf("first contact without --accept-new-host-key: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(kh); !os.IsNotExist(err) || s.sessions() != 0 {
		t.Fatalf("refused first contact left a known_hosts (%v) or a login (%d)", err, s.sessions())
	}
	out, errOut, code := s.runHost(append([]string{"status", "--json"}, s.remote("--known-hosts", kh, "--accept-new-host-key")...)...)
	if code != exitDrift || resultOf(t, out, errOut).Command != "status" || !strings.Contains(errOut, "recorded new host key") {
		t.Fatalf("first contact with --accept-new-host-key: exit %d\n%s\n%s", code, out, errOut)
	}
	assertMode(t, kh, 0o600)
	assertMode(t, filepath.Dir(kh), 0o700)
	// The recorded key is the sim sshd's host key.
	if got, want := readFile(t, kh), readFile(t, filepath.Join(s.sshd.Dir, "known_hosts")); got != want {
		t.Fatalf("recorded known_hosts:\n%s\nsim's:\n%s", got, want)
	}
	if _, errOut, code := s.runHost(append([]string{"status"}, s.remote("--known-hosts", kh)...)...); code != exitDrift {
		t.Fatalf("second contact: exit %d\n%s", code, errOut)
	}
}

// --target vagrant=DIR reads `vagrant ssh-config` in DIR. No VirtualBox
// here: a stand-in vagrant prints the ssh-config of the simulated dom0.
func TestVagrantTarget(t *testing.T) {
	s := newSSHLab(t)
	bin := t.TempDir()
	os.WriteFile(filepath.Join(bin, "vagrant"), []byte(`#!/bin/sh
# Stands in for vagrant: the ssh-config of the simulated dom0, from the
# project directory it runs in.
[ "$1" = ssh-config ] || { echo "fake vagrant: unexpected: $*" >&2; exit 1; }
exec cat ssh-config.out
`), 0o755)
	project := t.TempDir()
	os.WriteFile(filepath.Join(project, "ssh-config.out"), []byte(`Host default
  HostName 192.168.77.2
  User root
  Port 22
  UserKnownHostsFile /dev/null
  StrictHostKeyChecking no
  PasswordAuthentication no
  IdentityFile `+filepath.Join(s.sshd.Dir, "id_ed25519")+`
  IdentitiesOnly yes
  LogLevel FATAL
`), 0o644)
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))
	target := "--target=vagrant=" + project
	common := []string{target, "--dom0-state-dir", s.dom0Root, "--agent-binary", s.agent}

	// Vagrant's "StrictHostKeyChecking no" is not followed: labctl's own
	// known_hosts for the lab is empty, so first contact is refused.
	_, errOut, code := s.runHost(append([]string{"status"}, common...)...)
	if code != exitFail || !strings.Contains(errOut, "--accept-new-host-key") {
		t.Fatalf("vagrant first contact: exit %d\n%s", code, errOut)
	}
	out, errOut, code := s.runHost(append([]string{"provision", "--json", "--accept-new-host-key"}, common...)...)
	if code != 0 || !resultOf(t, out, errOut).OK {
		t.Fatalf("provision --target vagrant: exit %d\n%s\n%s", code, out, errOut)
	}
	kh := filepath.Join(s.StateDir(), "vagrant", "known_hosts")
	assertMode(t, kh, 0o600)
	assertMode(t, filepath.Dir(kh), 0o700)
	if out, errOut, code := s.runHost(append([]string{"status", "--json"}, common...)...); code != 0 || !resultOf(t, out, errOut).OK {
		t.Fatalf("status --target vagrant: exit %d\n%s", code, errOut)
	}
	// doctor with a vagrant target checks VirtualBox, which is not here.
	out, errOut, code = s.runHost(append([]string{"doctor", "--json"}, common...)...)
	d := doctorOf(t, out, errOut)
	f := findFinding(d, "host", "virtualbox-version", "")
	if code != exitFail || f == nil || f.Status != "fail" || !strings.Contains(f.Fix, "VBoxManage --version") {
		t.Fatalf("doctor --target vagrant without VirtualBox: exit %d, finding %+v\n%s", code, f, errOut)
	}
	if f := findFinding(d, "dom0", "bridge", ""); f == nil || f.Status != "ok" {
		t.Fatalf("doctor --target vagrant: dom0 bridge %+v", f)
	}
}

// sim up --sshd is idempotent, and sim down stops sshd with the lab.
func TestSimSSHDUpDown(t *testing.T) {
	t.Parallel()
	s := newSSHLab(t)
	pid := s.sshd.Pid()
	out := s.MustRun("sim", "up", "--sshd")
	if s.sshd.Pid() != pid || !strings.Contains(out, "ssh://root@192.168.77.2") {
		t.Fatalf("second sim up --sshd: pid %d → %d\n%s", pid, s.sshd.Pid(), out)
	}
	for _, f := range []string{"id_ed25519", "ssh_host_ed25519_key", "authorized_keys", "known_hosts", "sshd_config"} {
		assertMode(t, filepath.Join(s.sshd.Dir, f), 0o600)
	}
	assertMode(t, s.sshd.Dir, 0o700)
	conf := readFile(t, filepath.Join(s.sshd.Dir, "sshd_config"))
	for _, want := range []string{"ListenAddress 192.168.77.2:22", "UsePAM no", "PermitRootLogin prohibit-password", "PasswordAuthentication no", "PidFile " + filepath.Join(s.sshd.Dir, "sshd.pid")} {
		if !strings.Contains(conf, want+"\n") {
			t.Errorf("sshd_config lacks %q", want)
		}
	}
	s.MustRun("sim", "down")
	if !eventually(5*time.Second, func() bool { return !procs.Alive(pid) }) {
		t.Fatalf("sshd %d still runs after sim down", pid)
	}
	if _, err := os.Stat(s.sshd.Dir); !os.IsNotExist(err) {
		t.Fatalf("sim down left %s (%v)", s.sshd.Dir, err)
	}
}

func assertMode(t *testing.T, p string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != want {
		t.Fatalf("%s: mode %o, want %o", p, st.Mode().Perm(), want)
	}
}

func sha(t *testing.T, p string) string {
	t.Helper()
	s, err := procs.FileSHA256(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
