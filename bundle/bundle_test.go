package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/vmctl"
)

const (
	hash = "pbkdf2-sha256$600000$c2FsdHNhbHQ$a2V5a2V5a2V5"
	pem  = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n"
)

// A state directory as labctl leaves it, with secrets beside the files
// the bundle takes and one leaked into a console log.
func stateDir(t *testing.T) string {
	d := t.TempDir()
	files := map[string]string{
		"journal.jsonl":                  `{"schema":2,"lab":"t"}` + "\n",
		"dnsmasq/dnsmasq.conf":           "interface=br0\ndhcp-range=192.168.77.3,192.168.77.200,1h\n",
		"dnsmasq/dnsmasq.leases":         "1 00:16:3e:00:00:01 192.168.77.3 * *\n",
		"dnsmasq/dnsmasq.log":            "dnsmasq-dhcp: DHCPACK(br0) 192.168.77.3\n",
		"guests/auth-1/console.log":      "booted\nuser john: " + hash + "\nlistening\n",
		"guests/auth-1/guest.json":       `{"name":"auth-1"}`,
		"users/john":                     hash,
		"images/users.img":               "john\x00" + hash,
		"ssh/ssh_host_ed25519_key":       pem,
		"ssh/id_ed25519":                 pem,
		"guests/auth-1/ssh_host_rsa_key": pem,
	}
	for n, c := range files {
		p := filepath.Join(d, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(c), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return d
}

func untar(t *testing.T, b []byte) map[string]string {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	out := map[string]string{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		c, _ := io.ReadAll(tr)
		out[h.Name[strings.Index(h.Name, "/")+1:]] = string(c)
	}
}

func TestWriteNoSecrets(t *testing.T) {
	d := stateDir(t)
	var buf bytes.Buffer
	entries, err := Write(context.Background(), &buf, Input{
		Lab: "t", Spec: []byte("lab: t\n"), StateDir: d, Dom0: vmctl.Local{}, Host: vmctl.Local{},
		Guests: []string{"auth-1", "gone"}, Places: []Place{{Name: "local", T: vmctl.Local{}}},
		Tools:   []Tool{{"dom0", []string{"uname", "-a"}}, {"host", []string{"labctl-no-such-tool", "--version"}}},
		Reports: map[string][]byte{"status.json": []byte(`{"ok":true}`), "graph.svg": []byte("<svg/>")},
		Now:     time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	files := untar(t, buf.Bytes())
	for _, want := range []string{"MANIFEST.txt", "spec.yaml", "state/journal.jsonl", "state/dnsmasq/dnsmasq.conf",
		"state/dnsmasq/dnsmasq.leases", "state/dnsmasq/dnsmasq.log", "state/guests/auth-1/console.log",
		"net/local/ip-addr.txt", "versions.txt", "status.json", "graph.svg"} {
		if _, ok := files[want]; !ok {
			t.Errorf("bundle lacks %s (has %v)", want, keys(files))
		}
	}
	for name, c := range files {
		for _, secret := range []string{"pbkdf2-sha256$", "PRIVATE KEY", "b3BlbnNzaC1rZXktdjE", "a2V5a2V5a2V5"} {
			if strings.Contains(c, secret) {
				t.Errorf("%s holds a secret (%q)", name, secret)
			}
		}
		if strings.HasPrefix(name, "state/users") || strings.HasPrefix(name, "state/images") || strings.Contains(name, "ssh") {
			t.Errorf("bundle took %s", name)
		}
	}
	if c := files["state/guests/auth-1/console.log"]; !strings.Contains(c, "booted") || !strings.Contains(c, "withheld") {
		t.Errorf("console log should keep its other lines and mark the withheld one:\n%s", c)
	}
	man := files["MANIFEST.txt"]
	for _, want := range []string{"state/guests/gone/console.log", "missing:", "1 line(s) withheld"} {
		if !strings.Contains(man, want) {
			t.Errorf("MANIFEST lacks %q:\n%s", want, man)
		}
	}
	if !strings.Contains(files["versions.txt"], "labctl-no-such-tool --version\n(unavailable") {
		t.Errorf("versions.txt:\n%s", files["versions.txt"])
	}
	var missing int
	for _, e := range entries {
		if e.Missing != "" {
			missing++
		}
	}
	if missing == 0 {
		t.Error("no entry reported missing, yet guest gone has no files")
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestRedact(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"plain\n", "plain\n"},
		{"a\n" + hash + "\nb", "a\n[labctl bundle: line withheld, it held a secret]\nb"},
		{pem, strings.Repeat("[labctl bundle: line withheld, it held a secret]\n", 3)},
	} {
		got, _ := Redact([]byte(c.in))
		if string(got) != c.want {
			t.Errorf("Redact(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

// FuzzRedact: whatever the bytes, no line that matched a secret pattern
// survives.
func FuzzRedact(f *testing.F) {
	f.Add([]byte(hash))
	f.Add([]byte(pem))
	f.Add([]byte("x\r\npbkdf2-sha256$1$a$b"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, _ := Redact(b)
		if secretLine.Match(out) {
			t.Fatalf("secret survived: %q", out)
		}
	})
}
