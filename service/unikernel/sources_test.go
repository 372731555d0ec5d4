package unikernel_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"

	"github.com/labctl/labctl/service/unikernel"
)

func TestSources(t *testing.T) {
	src, err := unikernel.Sources()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for n := range src {
		names = append(names, n)
	}
	sort.Strings(names)
	want := []string{"config.ml", "labctl_auth.ml", "labctl_auth.mli", "unikernel.ml"}
	if len(names) != len(want) {
		t.Fatalf("sources = %q, want %q", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("sources = %q, want %q", names, want)
		}
	}
	// The embedded copy is the file in the tree, byte for byte.
	onDisk := map[string]string{"config.ml": "config.ml", "unikernel.ml": "unikernel.ml",
		"labctl_auth.ml": filepath.Join("src", "labctl_auth.ml"), "labctl_auth.mli": filepath.Join("src", "labctl_auth.mli")}
	for flat, p := range onDisk {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(b, src[flat]) {
			t.Errorf("%s differs from %s", flat, p)
		}
	}
	m := regexp.MustCompile(`(?m)^let \(\) = register "([^"]+)"`).FindSubmatch(src["config.ml"])
	if m == nil || string(m[1]) != unikernel.Name {
		t.Fatalf("config.ml registers %q, Name is %q", m, unikernel.Name)
	}
	first, _, _ := bytes.Cut(src["config.ml"], []byte("\n"))
	// mirage 4.10.5 made DHCP the default and 4.11.0 removed ?dhcp_key:
	// config.ml relies on the first and avoids the second.
	if string(first) != "(* mirage >= 4.10.5 & < 4.12.0 *)" {
		t.Fatalf("config.ml first line = %q", first)
	}
	// unikernel.ml reaches the pure module by its module name.
	if !bytes.Contains(src["unikernel.ml"], []byte("Labctl_auth.handle")) {
		t.Error("unikernel.ml does not use Labctl_auth.handle")
	}
}

// TestConfigMLAPI: config.ml keeps away from what mirage's releases in
// its range broke. The real proof is ../shared/tools/unikernel-api, which
// type-checks it against mirage's own interfaces (run by .ci/run); this
// test says why when it fails.
func TestConfigMLAPI(t *testing.T) {
	b, err := os.ReadFile("config.ml")
	if err != nil {
		t.Fatal(err)
	}
	code := regexp.MustCompile(`(?s)\(\*.*?\*\)`).ReplaceAll(b, nil) // comments may name what they avoid
	for _, bad := range []struct{ re, why string }{
		{`~dhcp_key`, "mirage 4.11.0 removed generic_stackv4v6's ?dhcp_key (DHCP is the default since 4.10.5)"},
		{`~net_key`, "mirage 4.11.0 removed generic_stackv4v6's ?net_key"},
		{`(?m)^let\s+http\s*=`, "a value named http hides Mirage.http, the device type main's signature uses"},
	} {
		if regexp.MustCompile(bad.re).Match(code) {
			t.Errorf("config.ml matches %s: %s", bad.re, bad.why)
		}
	}
}
