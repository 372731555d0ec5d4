package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// readBundle returns a bundle's files by their path under its root
// folder, and the whole decompressed tar for grepping.
func readBundle(t *testing.T, p string) (map[string]string, []byte) {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	raw, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(raw))
	files := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return files, raw
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		_, rel, _ := strings.Cut(h.Name, "/")
		files[rel] = string(b)
	}
}

// plantKeys puts an sshd host key and a client identity in the lab's
// state directory, where the ssh target's tests keep theirs.
func plantKeys(t *testing.T, dir string) []string {
	t.Helper()
	var bodies []string
	for _, name := range []string{"ssh/ssh_host_ed25519_key", "ssh/id_ed25519"} {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := ssh.MarshalPrivateKey(k, "")
		if err != nil {
			t.Fatal(err)
		}
		b := pem.EncodeToMemory(blk)
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, strings.Split(string(b), "\n")[1])
	}
	return bodies
}

// TestBundleSim bundles a live two-guest sim lab and checks the file
// list of docs/observe.md is there, filled, and that no password hash or
// private key is anywhere in the archive.
func TestBundleSim(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	spec := fastSpec(t, "guests:\n  replicas: 2\n")
	deployJSON(t, l, "-f", spec)
	keys := plantKeys(t, l.StateDir())
	var secrets []string
	ents, err := os.ReadDir(filepath.Join(l.StateDir(), "users"))
	if err != nil || len(ents) == 0 {
		t.Fatalf("no users in the lab: %v", err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(l.StateDir(), "users", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		h := strings.TrimSpace(string(b))
		parts := strings.Split(h, "$")
		secrets = append(secrets, h, parts[len(parts)-1]) // the hash, and its key alone
	}
	secrets = append(append(secrets, keys...), "PRIVATE KEY", "pbkdf2-sha256$")

	out := filepath.Join(t.TempDir(), "b.tar.gz")
	l.MustRun("bundle", "--target", "sim", "-f", spec, "-o", out)
	files, raw := readBundle(t, out)
	want := []string{"MANIFEST.txt", "spec.yaml", "state/journal.jsonl", "state/dnsmasq/dnsmasq.conf",
		"state/dnsmasq/dnsmasq.leases", "state/dnsmasq/dnsmasq.log",
		"state/guests/auth-1/console.log", "state/guests/auth-2/console.log",
		"status.json", "doctor.json", "graph.svg", "versions.txt"}
	for _, ns := range []string{l.HostNS(), l.Dom0NS(), l.WANNS(), l.Name + "-g1", l.Name + "-g2"} {
		for _, f := range []string{"ip-addr.txt", "ip-route.txt", "ip-link.txt"} {
			want = append(want, "net/"+ns+"/"+f)
		}
		want = append(want, "net/"+ns+"/iptables-save.txt")
	}
	for _, w := range want {
		if _, ok := files[w]; !ok {
			t.Errorf("bundle lacks %s\nMANIFEST:\n%s", w, files["MANIFEST.txt"])
		}
	}
	checks := map[string]string{
		"net/" + l.Dom0NS() + "/ip-addr.txt":       "192.168.77.2/24",
		"net/" + l.Dom0NS() + "/ip-link.txt":       "bridge",
		"net/" + l.Dom0NS() + "/iptables-save.txt": "LABCTL-",
		"net/" + l.HostNS() + "/ip-addr.txt":       "vboxnet4",
		"state/dnsmasq/dnsmasq.leases":             "192.168.77.4",
		"graph.svg":                                "<title>guest:auth&#45;2</title>", // graphviz writes - as &#45;
		"versions.txt":                             "dnsmasq --version\nDnsmasq version",
		"status.json":                              `"port": "vif2.0"`,
	}
	for f, s := range checks {
		if !strings.Contains(files[f], s) {
			t.Errorf("%s lacks %q:\n%s", f, s, files[f])
		}
	}
	for _, s := range secrets {
		if bytes.Contains(raw, []byte(s)) {
			t.Errorf("the bundle holds a secret: %q", s)
		}
	}
	for f := range files {
		if strings.Contains(f, "users") || strings.Contains(f, "ssh") || strings.Contains(f, "images") {
			t.Errorf("bundle took %s", f)
		}
	}
}

// TestBundleOnFailure: check writes a bundle only when it fails, into
// --bundle-on-failure DIR, or ./labctl-bundles under CI=true.
func TestBundleOnFailure(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	spec := fastSpec(t, "")
	deployJSON(t, l, "-f", spec)

	dir := t.TempDir()
	l.MustRun("check", "--target", "sim", "-f", spec, "--bundle-on-failure", dir)
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Fatalf("a passing check wrote %v", ents)
	}
	// A user the guests do not store: the valid-login probe fails.
	_, errOut, code := l.Run("check", "--target", "sim", "-f", spec, "--user", "nobody", "--bundle-on-failure", dir)
	if code != exitFail {
		t.Fatalf("check --user nobody: exit %d, want %d\n%s", code, exitFail, errOut)
	}
	one := func(dir string, cmd ...string) string {
		t.Helper()
		verb := "check"
		if len(cmd) > 0 {
			verb = cmd[0]
		}
		m, _ := filepath.Glob(filepath.Join(dir, "labctl-bundle-"+l.Name+"-"+verb+"-*.tar.gz"))
		if len(m) != 1 {
			ents, _ := os.ReadDir(dir)
			t.Fatalf("want one bundle in %s, have %v\n%s", dir, ents, errOut)
		}
		return m[0]
	}
	files, _ := readBundle(t, one(dir))
	if !strings.Contains(files["doctor.json"], `"command": "doctor"`) || files["graph.svg"] == "" {
		t.Errorf("failure bundle lacks doctor or graph:\n%s", files["MANIFEST.txt"])
	}

	// CI=true, no flag: ./labctl-bundles.
	wd := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := l.Command(ctx, []string{"CI=true", "LABCTL_BUNDLE_ON_FAILURE="}, "check", "--target", "sim", "-f", spec, "--user", "nobody")
	cmd.Dir = wd
	if err := cmd.Run(); err == nil {
		t.Fatal("check --user nobody passed")
	}
	one(filepath.Join(wd, "labctl-bundles"))
	// LABCTL_BUNDLE_ON_FAILURE=off wins over CI=true (the test harness
	// sets it so that expected failures leave nothing behind).
	wd2 := t.TempDir()
	cmd = l.Command(ctx, []string{"CI=true", "LABCTL_BUNDLE_ON_FAILURE=off"}, "check", "--target", "sim", "-f", spec, "--user", "nobody")
	cmd.Dir = wd2
	if err := cmd.Run(); err == nil {
		t.Fatal("check --user nobody passed")
	}
	if ents, _ := os.ReadDir(wd2); len(ents) != 0 {
		t.Errorf("LABCTL_BUNDLE_ON_FAILURE=off wrote %v", ents)
	}
	// Bad usage is not a lab failure: no bundle.
	usage := t.TempDir()
	if _, _, code := l.Run("check", "--target", "nowhere", "-f", spec, "--bundle-on-failure", usage); code != exitUsage {
		t.Fatalf("--target nowhere: exit %d", code)
	}
	if ents, _ := os.ReadDir(usage); len(ents) != 0 {
		t.Errorf("a usage error wrote %v", ents)
	}

	// up failing half-way (the xen runtime on a machine without Xen:
	// deploy's preflight fails after the network converged).
	xen := fastSpec(t, "guests:\n  runtime: xen\n")
	upDir := t.TempDir()
	if _, errOut, code := l.Run("up", "--target", "sim", "-f", xen, "--bundle-on-failure", upDir); code != exitFail {
		t.Fatalf("up with the xen runtime in the sim: exit %d, want %d\n%s", code, exitFail, errOut)
	}
	files, _ = readBundle(t, one(upDir, "up"))
	if !strings.Contains(files["state/journal.jsonl"], "link-created") || !strings.Contains(files["versions.txt"], "xl info") {
		t.Errorf("up's failure bundle lacks the journal or xl's answer:\n%s", files["MANIFEST.txt"])
	}
}
