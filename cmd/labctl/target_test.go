package main

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestParseTarget(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in      string
		want    targetSpec
		wantErr string
	}{
		{"local", targetSpec{kind: targetLocal}, ""},
		{"sim", targetSpec{kind: targetSim}, ""},
		{"vagrant", targetSpec{kind: targetVagrant, dir: "."}, ""},
		{"vagrant=../lab", targetSpec{kind: targetVagrant, dir: "../lab"}, ""},
		{"vagrant=", targetSpec{}, "expected vagrant=DIR"},
		{"ssh://root@192.168.77.2", targetSpec{kind: targetSSH, url: "ssh://root@192.168.77.2"}, ""},
		{"ssh://vagrant@[::1]:2222", targetSpec{kind: targetSSH, url: "ssh://vagrant@[::1]:2222"}, ""},
		{"ssh://192.168.77.2", targetSpec{}, "no user"},
		{"ssh://root:secret@host", targetSpec{}, "passwords are not accepted"},
		{"ssh://root@host:99999", targetSpec{}, "bad port"},
		{"ssh://root@host/path", targetSpec{}, "unexpected path"},
		{"root@host", targetSpec{}, "expected local, sim, vagrant[=DIR] or ssh://"},
		{"", targetSpec{}, "expected local, sim"},
		{"vagrantX", targetSpec{}, "expected local, sim"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseTarget(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
			if got.remote() != (got.kind == targetVagrant || got.kind == targetSSH) {
				t.Fatalf("remote() wrong for %+v", got)
			}
		})
	}
}

func TestCheckRemotePath(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"/var/lib/labctl", "/srv/lab state"} {
		if err := checkRemotePath(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "var/lib/labctl", "/var/lib/labctl/", "/var/../etc", "/", "/a\nb", "/a\x00b"} {
		if err := checkRemotePath(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestCheckLinuxAMD64(t *testing.T) {
	t.Parallel()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the test binary itself is the linux/amd64 sample")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkLinuxAMD64(self); err != nil {
		t.Fatalf("the test binary: %v", err)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "labctl.sh")
	os.WriteFile(script, []byte("#!/bin/sh\nexec labctl \"$@\"\n"), 0o755)
	if err := checkLinuxAMD64(script); err == nil || !strings.Contains(err.Error(), "not a linux/amd64 executable") {
		t.Fatalf("a shell script: %v", err)
	}
	// An arm64 ELF header: right format, wrong machine.
	arm := make([]byte, 64)
	copy(arm, "\x7fELF\x02\x01\x01")
	arm[16] = 2    // ET_EXEC
	arm[18] = 0xb7 // EM_AARCH64
	arm[20] = 1    // EV_CURRENT
	p := filepath.Join(dir, "labctl-arm64")
	os.WriteFile(p, arm, 0o755)
	if err := checkLinuxAMD64(p); err == nil || !strings.Contains(err.Error(), "EM_AARCH64") {
		t.Fatalf("an arm64 binary: %v", err)
	}
	if err := checkLinuxAMD64(filepath.Join(dir, "missing")); err == nil {
		t.Fatal("a missing file passed")
	}
}

func TestAgentBinary(t *testing.T) {
	t.Parallel()
	a := &app{}
	got, err := remoteOps{a}.agentBinary()
	if runtime.GOOS == "linux" && runtime.GOARCH == "amd64" {
		self, _ := os.Executable()
		if err != nil || got != self {
			t.Fatalf("default agent binary = %q, %v; want this executable %q", got, err, self)
		}
	} else if err == nil || !strings.Contains(err.Error(), "--agent-binary") {
		t.Fatalf("on %s/%s: %q, %v; want an error naming --agent-binary", runtime.GOOS, runtime.GOARCH, got, err)
	}
	a.remote.agentBinary = filepath.Join(t.TempDir(), "nope")
	if _, err := (remoteOps{a}).agentBinary(); err == nil || !strings.Contains(err.Error(), "--agent-binary") {
		t.Fatalf("a missing --agent-binary: %v", err)
	}
}

func TestReplaceWord(t *testing.T) {
	t.Parallel()
	const suf = "labctl provision --target sim --lab x"
	tests := []struct{ in, want string }{
		{"labctl provision", suf},
		{"ip link delete br0 && labctl provision", "ip link delete br0 && " + suf},
		{"labctl provision; echo", suf + "; echo"},
		{"labctl provisioning", "labctl provisioning"},
		{"", ""},
		{"kill 42", "kill 42"},
	}
	for _, tt := range tests {
		if got := replaceWord(tt.in, "labctl provision", suf); got != tt.want {
			t.Errorf("replaceWord(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestVagrantVMID(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if got := vagrantVMID(dir, ""); got != "" {
		t.Fatalf("no .vagrant: %q", got)
	}
	p := filepath.Join(dir, ".vagrant", "machines", "default", "virtualbox")
	os.MkdirAll(p, 0o755)
	os.WriteFile(filepath.Join(p, "id"), []byte("5a2f9c1e-0c1d-4e4b-9d55-6c1c1d2e3f40"), 0o644)
	if got := vagrantVMID(dir, ""); got != "5a2f9c1e-0c1d-4e4b-9d55-6c1c1d2e3f40" {
		t.Fatalf("default machine: %q", got)
	}
	if got := vagrantVMID(dir, "node2"); got != "" {
		t.Fatalf("another machine: %q", got)
	}
}
