package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/vmctl/xen"
)

// TestXenPlanXLParsesWithRealXL: the .xl files a `deploy --runtime xen
// --plan` renders on the sim parse with Xen's own xl (../shared/tools
// xl-parse) into the domains labctl means: PVH, the built kernel, the
// users image as xvdb, one vif on the lab's bridge with the guest's MAC.
func TestXenPlanXLParsesWithRealXL(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t)
	l := newLab(t)
	missing := filepath.Join(t.TempDir(), "no-xl-here")
	spec := fastSpec(t, fmt.Sprintf("guests:\n  runtime: xen\n  replicas: 2\n  memory: 48\nxen:\n  xl: %s\n  opam_root: /opt/labctl/opam\n  opam_switch: mirage\n  extra: '-l *:debug'\n", missing))
	out, errOut, code := l.Run("deploy", "--target", "sim", "-f", spec, "--plan", "--json")
	// The xen runtime's part of the document, under its adapter's key.
	var r struct {
		XenPlans []xen.Plan `json:"xen_plans"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != 0 {
		t.Fatalf("deploy --plan --json: exit %d, %v\n%s\n%s", code, err, out, errOut)
	}
	if len(r.XenPlans) != 2 {
		t.Fatalf("xen plans = %d, want 2", len(r.XenPlans))
	}
	for _, p := range r.XenPlans {
		raw, err := testenv.XLParse(t, []byte(p.XL))
		if err != nil {
			t.Fatalf("%s: %v\n%s", p.XLPath, err, p.XL)
		}
		var cfg struct {
			CInfo struct{ Type, Name string } `json:"c_info"`
			BInfo struct {
				Kernel   string `json:"kernel"`
				MaxMemKB int    `json:"max_memkb"`
				Cmdline  string `json:"cmdline"`
			} `json:"b_info"`
			Disks []struct {
				Vdev     string `json:"vdev"`
				PdevPath string `json:"pdev_path"`
			} `json:"disks"`
			Nics []struct{ Mac, Bridge string } `json:"nics"`
		}
		if err := json.Unmarshal(raw, &cfg); err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(filepath.Base(p.XLPath), ".xl")
		switch {
		case cfg.CInfo.Type != "pvh" || cfg.CInfo.Name != name:
			t.Errorf("%s: c_info = %+v", p.XLPath, cfg.CInfo)
		case cfg.BInfo.Kernel != filepath.Join(l.StateDir(), "build", "auth", "dist", "auth.xen") || cfg.BInfo.MaxMemKB != 48*1024 || cfg.BInfo.Cmdline != "-l *:debug":
			t.Errorf("%s: b_info = %+v", p.XLPath, cfg.BInfo)
		case len(cfg.Disks) != 1 || cfg.Disks[0].Vdev != "xvdb" || !filepath.IsAbs(cfg.Disks[0].PdevPath):
			t.Errorf("%s: disks = %+v", p.XLPath, cfg.Disks)
		case len(cfg.Nics) != 1 || cfg.Nics[0].Bridge != "br0" || !strings.HasPrefix(cfg.Nics[0].Mac, "00:16:3e:"):
			t.Errorf("%s: nics = %+v", p.XLPath, cfg.Nics)
		}
	}
	// The build it plans goes through the opam root the spec names, with
	// the flags that hand it to mirage's inner opam calls.
	if !strings.Contains(out, `"--set-root"`) || !strings.Contains(out, `"--set-switch"`) {
		t.Errorf("planned build commands lack opam exec --set-root --set-switch:\n%s", out)
	}
}
