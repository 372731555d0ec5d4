package vagrant

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/vmctl/sshx"
)

func fixture(t testing.TB, name string) string { return string(testenv.ReadFile(t, "testdata", name)) }

type want struct {
	Host, HostName, User string
	Port                 int
	IdentityFiles        []string
	Provider             string
}

func TestParseSSHConfig(t *testing.T) {
	tests := []struct {
		fixture string
		in      string
		want    []want
		wantErr string
	}{
		{fixture: "ssh-config-single-default.txt", want: []want{{
			Host: "default", HostName: "127.0.0.1", User: "vagrant", Port: 2222,
			IdentityFiles: []string{"/home/verhoes/git/NLESC-JCER/linux_actions_runner/ubuntu-vagrant/.vagrant/machines/default/virtualbox/private_key"},
		}}},
		{fixture: "ssh-config-multi-node1-node2.txt", want: []want{
			{Host: "node1", HostName: "127.0.0.1", User: "vagrant", Port: 2222,
				IdentityFiles: []string{"/home/xxxxxx/centos7/.vagrant/machines/node1/virtualbox/private_key"}},
			{Host: "node2", HostName: "127.0.0.1", User: "vagrant", Port: 2200,
				IdentityFiles: []string{"/home/xxxxxx/centos7/.vagrant/machines/node2/virtualbox/private_key"}},
		}},
		{fixture: "ssh-config-machine-readable.txt", want: []want{{
			Host: "default", HostName: "127.0.0.1", User: "core", Port: 2222,
			IdentityFiles: []string{"/Users/user/.vagrant.d/insecure_private_key"}, Provider: "virtualbox",
		}}},
		{fixture: "ssh-config-empty-identityfile-0.9dev.txt", want: []want{{
			Host: "myvm", HostName: "127.0.0.1", User: "vagrant", Port: 2226,
		}}},
		{fixture: "ssh-config-constructed-quoted-identity.txt", want: []want{{
			Host: "dom0", HostName: "127.0.0.1", User: "vagrant", Port: 2200,
			IdentityFiles: []string{"/home/user/My Labs/labctl/.vagrant/machines/dom0/virtualbox/private_key"},
		}}},
		{fixture: "ssh-config-constructed-machine-readable-two.txt", want: []want{
			{Host: "dom0", HostName: "127.0.0.1", User: "vagrant", Port: 2222,
				IdentityFiles: []string{"/home/user/labctl/.vagrant/machines/dom0/virtualbox/private_key"}, Provider: "virtualbox"},
			{Host: "spare", HostName: "127.0.0.1", User: "vagrant", Port: 2200,
				IdentityFiles: []string{"/home/user/a,b/private_key"}, Provider: "virtualbox"},
		}},
		{in: "Host x\n  HostName=10.0.0.1\n  Port = 22\n  User root\n  IdentityFile /a\n  IdentityFile /b\n", want: []want{{
			Host: "x", HostName: "10.0.0.1", User: "root", Port: 22, IdentityFiles: []string{"/a", "/b"},
		}}},
		{in: "", wantErr: "no Host"},
		{in: "HostName 127.0.0.1\n", wantErr: "before any Host"},
		{in: "Host x\n Port 70000\n", wantErr: "bad Port"},
		{in: "Host x\n Port two\n", wantErr: "bad Port"},
		{in: "Host\n", wantErr: "without a name"},
		{in: "1534898948,default,error-exit,Vagrant::Errors::SSHNotReady,The provider was unable to find an SSH port\n", wantErr: "unable to find"},
		{in: "1534898948,default,metadata,provider,virtualbox\n", wantErr: "no ssh-config"},
	}
	for _, tt := range tests {
		name := tt.fixture
		if name == "" {
			name = tt.in
		}
		t.Run(name, func(t *testing.T) {
			in := tt.in
			if tt.fixture != "" {
				in = fixture(t, tt.fixture)
			}
			cfgs, err := ParseSSHConfig(in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			got := make([]want, len(cfgs))
			for i, c := range cfgs {
				got[i] = want{c.Host, c.HostName, c.User, c.Port, c.IdentityFiles, c.Provider}
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestOptionsKept(t *testing.T) {
	cfgs, err := ParseSSHConfig(fixture(t, "ssh-config-machine-readable.txt"))
	if err != nil {
		t.Fatal(err)
	}
	o := cfgs[0].Options
	if o["stricthostkeychecking"][0] != "no" || o["unknownfield"][0] != "no" || o["forwardagent"][0] != "yes" {
		t.Fatalf("options = %v", o)
	}
}

func TestTargetAndSSHX(t *testing.T) {
	cfgs, err := ParseSSHConfig(fixture(t, "ssh-config-multi-node1-node2.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Find(cfgs, ""); err == nil || !strings.Contains(err.Error(), "node1, node2") {
		t.Fatalf("Find ambiguous: %v", err)
	}
	if _, err := Find(cfgs, "node3"); err == nil {
		t.Fatal("Find of a missing machine succeeded")
	}
	n2, err := Find(cfgs, "node2")
	if err != nil {
		t.Fatal(err)
	}
	target, err := n2.Target()
	if err != nil || target != "ssh://vagrant@127.0.0.1:2200" {
		t.Fatalf("Target = %q, %v", target, err)
	}
	sc, err := n2.SSHX("/state/known_hosts", false, nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc.Target != target || sc.KnownHostsFile != "/state/known_hosts" || sc.AcceptNewHostKey ||
		!reflect.DeepEqual(sc.IdentityFiles, n2.IdentityFiles) {
		t.Fatalf("SSHX = %+v", sc)
	}

	tests := []struct {
		name string
		c    SSHConfig
		err  string
	}{
		{"empty identity", mustOne(t, "ssh-config-empty-identityfile-0.9dev.txt"), "no IdentityFile"},
		{"no hostname", SSHConfig{Host: "x", User: "u"}, "HostName"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.c.SSHX("/kh", true, nil)
			if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), tt.c.Host) {
				t.Fatalf("err = %v, want %q naming %q", err, tt.err, tt.c.Host)
			}
		})
	}
	// IPv6 hosts are bracketed; a missing port means 22.
	c := SSHConfig{Host: "v6", HostName: "::1", User: "root"}
	if got, _ := c.Target(); got != "ssh://root@[::1]:22" {
		t.Fatalf("IPv6 target = %q", got)
	}
}

func mustOne(t *testing.T, name string) SSHConfig {
	t.Helper()
	cfgs, err := ParseSSHConfig(fixture(t, name))
	if err != nil || len(cfgs) != 1 {
		t.Fatalf("%s: %v %v", name, cfgs, err)
	}
	return cfgs[0]
}

type fakeRunner struct {
	out      string
	err      error
	dir      string
	name     string
	argsSeen []string
}

func (f *fakeRunner) Run(_ context.Context, dir, name string, args ...string) ([]byte, error) {
	f.dir, f.name, f.argsSeen = dir, name, args
	return []byte(f.out), f.err
}

func TestReadSSHConfig(t *testing.T) {
	ctx := context.Background()
	r := &fakeRunner{out: fixture(t, "ssh-config-multi-node1-node2.txt")}
	c, err := ReadSSHConfig(ctx, r, "/lab", "node1")
	if err != nil || c.Port != 2222 {
		t.Fatalf("ReadSSHConfig = %+v, %v", c, err)
	}
	if r.dir != "/lab" || r.name != "vagrant" || !reflect.DeepEqual(r.argsSeen, []string{"ssh-config", "node1"}) {
		t.Fatalf("ran %s %v in %s", r.name, r.argsSeen, r.dir)
	}
	r = &fakeRunner{err: errors.New("exit status 1: The machine is not created")}
	if _, err := ReadSSHConfig(ctx, r, "/lab", ""); err == nil || !strings.Contains(err.Error(), "not created") {
		t.Fatalf("failing vagrant: %v", err)
	}
}

func TestExecRunner(t *testing.T) {
	dir := t.TempDir()
	out, err := ExecRunner{}.Run(context.Background(), dir, "pwd")
	if err != nil || strings.TrimSpace(string(out)) != dir {
		t.Fatalf("pwd in %s = %q, %v", dir, out, err)
	}
	_, err = ExecRunner{}.Run(context.Background(), dir, "sh", "-c", "echo broken >&2; exit 1")
	if err == nil || !strings.Contains(err.Error(), "broken") {
		t.Fatalf("err = %v, want stderr in it", err)
	}
}

func FuzzParseSSHConfig(f *testing.F) {
	for _, name := range []string{
		"ssh-config-single-default.txt", "ssh-config-multi-node1-node2.txt", "ssh-config-machine-readable.txt",
		"ssh-config-empty-identityfile-0.9dev.txt", "ssh-config-constructed-quoted-identity.txt",
		"ssh-config-constructed-machine-readable-two.txt",
	} {
		f.Add(fixture(f, name))
	}
	f.Fuzz(func(t *testing.T, s string) {
		cfgs, err := ParseSSHConfig(s)
		if err != nil {
			return
		}
		for _, c := range cfgs {
			if c.Host == "" || c.Port < 0 || c.Port > 65535 {
				t.Fatalf("bad block %+v", c)
			}
			for _, id := range c.IdentityFiles {
				if id == "" {
					t.Fatal("empty identity file kept")
				}
			}
			// A target we build must mean the same machine to sshx.
			target, err := c.Target()
			if err != nil {
				continue
			}
			user, hostport, err := sshx.ParseTarget(target)
			if err != nil {
				continue // e.g. a HostName no URL can carry; sshx refuses it
			}
			port := c.Port
			if port == 0 {
				port = 22
			}
			if user != c.User || hostport != net.JoinHostPort(c.HostName, strconv.Itoa(port)) {
				t.Fatalf("%+v -> %q -> %q %q", c, target, user, hostport)
			}
		}
	})
}
