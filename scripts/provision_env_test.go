package scripts

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestProvisionersPassRequiredEnv: every variable a provisioning script
// requires (`: "${VAR:?...}"`) is in the env its Vagrantfile provisioner
// hands it. labctl-provision.sh once needed the opam root and switch that
// only the toolchain step was given: the spec it wrote had no xen section
// and labctl could not find mirage under sudo.
func TestProvisionersPassRequiredEnv(t *testing.T) {
	vf, err := os.ReadFile(filepath.Join("..", "Vagrantfile"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := regexp.MustCompile(`(?m)^\s*config\.vm\.provision "`).Split(string(vf), -1)[1:]
	pathRE := regexp.MustCompile(`path: "scripts/([^"]+\.sh)"`)
	keyRE := regexp.MustCompile(`"([A-Z_][A-Z0-9_]*)"\s*=>`)
	sliceRE := regexp.MustCompile(`V\.slice\(([^)]*)\)`)
	requiredRE := regexp.MustCompile(`\$\{([A-Z_][A-Z0-9_]*):\?`)
	checked := 0
	for _, b := range blocks {
		m := pathRE.FindStringSubmatch(b)
		if m == nil {
			continue
		}
		given := map[string]bool{}
		for _, k := range keyRE.FindAllStringSubmatch(b, -1) {
			given[k[1]] = true
		}
		for _, s := range sliceRE.FindAllStringSubmatch(b, -1) {
			for _, k := range strings.Split(s[1], ",") {
				given[strings.Trim(strings.TrimSpace(k), `"`)] = true
			}
		}
		script, err := os.ReadFile(m[1])
		if err != nil {
			t.Fatalf("Vagrantfile runs scripts/%s: %v", m[1], err)
		}
		// A script that sources versions.env when run by hand still gets
		// its pins from the Vagrantfile in the VM (only the script is
		// uploaded), so the rule holds for it too.
		for _, r := range requiredRE.FindAllStringSubmatch(string(script), -1) {
			if !given[r[1]] {
				t.Errorf("scripts/%s requires %s, but its Vagrantfile provisioner does not pass it (passes %v)", m[1], r[1], keys(given))
			}
		}
		checked++
	}
	if checked < 4 {
		t.Fatalf("found %d shell provisioners in the Vagrantfile; the parser is out of date", checked)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
