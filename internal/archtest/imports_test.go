// Package archtest holds the import rules of the project's map (issue 11,
// ../shared/DESIGN.md): what may import what, checked on every package's
// non-test imports as `go list -f '{{.Imports}}'` shows them.
package archtest

import (
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const module = "github.com/labctl/labctl"

// packages maps each package's import path to its non-test imports.
func packages(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root: %v", err)
	}
	out := map[string][]string{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata") {
			return filepath.SkipDir
		}
		p, err := build.ImportDir(path, 0)
		if err != nil {
			if _, ok := err.(*build.NoGoError); ok {
				return nil
			}
			return err
		}
		rel, _ := filepath.Rel(root, path)
		out[filepath.ToSlash(filepath.Join(module, rel))] = p.Imports
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 10 {
		t.Fatalf("found %d packages: the walk went wrong", len(out))
	}
	return out
}

func under(path, dir string) bool {
	p := module + "/" + dir
	return path == p || strings.HasPrefix(path, p+"/")
}

func TestImportRules(t *testing.T) {
	pkgs := packages(t)
	if _, ok := pkgs[module+"/cmd/labctl"]; !ok {
		t.Fatal("cmd/labctl not found")
	}
	for path, imports := range pkgs {
		for _, imp := range imports {
			var why string
			switch {
			// cmd/ is flags, one call into the engine, rendering: the
			// network is reached through provision and doctor.
			case path == module+"/cmd/labctl" && (imp == "github.com/vishvananda/netlink" ||
				imp == module+"/netsetup" || under(imp, "vmctl/xen")):
				why = "cmd/labctl reaches the network and xen only through the engine"
			// Machines and services never reach up into the engine or cmd.
			case (under(path, "vmctl") || under(path, "netsetup") || under(path, "service")) &&
				(under(imp, "provision") || under(imp, "cmd")):
				why = "vmctl, netsetup and service never import provision or cmd"
			}
			if why != "" {
				t.Errorf("%s imports %s: %s", path, imp, why)
			}
		}
	}
}
