package doctor

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/hashicorp/go-version"

	"github.com/labctl/labctl/internal/toolver"
	"github.com/labctl/labctl/vmctl/xen"
)

// LayerVM is the lab VM as the checkout's scripts/versions.env will build
// it: checked before `vagrant up`, without the VM.
const LayerVM Layer = "vm"

var pinKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`) })

// ParseVersionsEnv reads scripts/versions.env the way the Vagrantfile does
// (labctl_versions): blank lines and # comments skipped, every other line
// KEY=VALUE with an upper-case KEY, and an environment variable of the
// same name overriding the file. lookup is os.LookupEnv in labctl.
func ParseVersionsEnv(b []byte, lookup func(string) (string, bool)) (map[string]string, error) {
	pins := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, "=")
		if !ok || !pinKey().MatchString(key) {
			return nil, fmt.Errorf("versions.env line %d: %q: expected KEY=VALUE with KEY in [A-Z0-9_]", n, line)
		}
		if v, set := lookup(key); set {
			value = v
		}
		pins[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("versions.env: %w", err)
	}
	return pins, nil
}

// VMPlanDir checks DIR/scripts/versions.env, DIR being the Vagrant project
// of --target vagrant=DIR: the dry run of the lab VM before `vagrant up`.
// lookup is os.LookupEnv (the Vagrantfile lets the environment override a
// pin).
func VMPlanDir(dir string, lookup func(string) (string, bool)) []Finding {
	p := filepath.Join(dir, "scripts", "versions.env")
	b, err := os.ReadFile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return []Finding{{Layer: LayerVM, Check: "vm-pins", Status: StatusWarn,
			Detail:  p + " not found: the VM's toolchain pins were not checked",
			Meaning: "the Vagrant directory is not a labctl checkout, so what the VM will install is unknown here",
			Fix:     "name labctl's checkout: --target vagrant=DIR, DIR holding labctl's Vagrantfile and scripts/"}}
	case err != nil:
		return []Finding{{Layer: LayerVM, Check: "vm-pins", Status: StatusFail, Detail: err.Error()}}
	}
	pins, err := ParseVersionsEnv(b, lookup)
	if err != nil {
		return []Finding{{Layer: LayerVM, Check: "vm-pins", Status: StatusFail, Detail: p + ": " + err.Error(),
			Meaning: "the Vagrantfile aborts on this file too", Fix: "fix " + p + " (KEY=VALUE lines)"}}
	}
	return append([]Finding{{Layer: LayerVM, Check: "vm-pins", Status: StatusOK, Detail: "the VM's pins: " + p}}, VMPlan(pins)...)
}

// VMPlan checks the pins a `vagrant up` will install against what labctl
// needs in dom0: the Xen, opam, OCaml and mirage versions its preflight
// accepts, the xen target's system packages (opam cannot install them
// without a tty), and the opam root and switch that the VM's lab spec
// names, since the agent runs under sudo's secure_path and finds mirage
// only through them. Each finding names the pin and its fix.
func VMPlan(pins map[string]string) []Finding {
	return []Finding{
		vmAtLeast(pins, "vm-xen", "XEN_MIN_VERSION", toolver.MinXen(),
			"Mirage >= 3.9 guests boot PVH only, which needs Xen 4.10 or later: check-xen.sh would accept a dom0 that cannot boot them"),
		vmAtLeast(pins, "vm-opam", "OPAM_MIN_VERSION", toolver.MinOpam(), "Mirage 4 needs opam 2.1 (opam-monorepo, depexts)"),
		vmOCaml(pins),
		vmMirage(pins),
		vmToolchain(pins),
		vmDepexts(pins),
	}
}

// vmFinding builds one VM-layer finding. Meaning and fix are kept only
// when the status is not OK.
func vmFinding(check string, st Status, detail, meaning, fix string) Finding {
	f := Finding{Layer: LayerVM, Check: check, Status: st, Detail: detail}
	if st != StatusOK {
		f.Meaning, f.Fix = meaning, fix
	}
	return f
}

// vmPinFix is the fix that sets pin key to want.
func vmPinFix(key, want string) string {
	return fmt.Sprintf("set %s=%s in scripts/versions.env (or the environment of vagrant up)", key, want)
}

// vmAtLeast checks that pin key is a version no lower than min.
func vmAtLeast(pins map[string]string, check, key string, min *version.Version, meaning string) Finding {
	v, err := version.NewVersion(pins[key])
	switch {
	case err != nil:
		return vmFinding(check, StatusFail, fmt.Sprintf("%s=%q is not a version", key, pins[key]), meaning, vmPinFix(key, min.String()))
	case v.LessThan(min):
		return vmFinding(check, StatusFail, fmt.Sprintf("%s=%s is below %s", key, pins[key], min), meaning, vmPinFix(key, min.String()))
	default:
		return vmFinding(check, StatusOK, fmt.Sprintf("%s=%s (labctl needs >= %s)", key, pins[key], min), "", "")
	}
}

// vmOCaml checks the OCAML_VERSION pin against the OCaml versions labctl
// supports.
func vmOCaml(pins map[string]string) Finding {
	v, err := toolver.OCaml(pins["OCAML_VERSION"])
	if err != nil {
		return vmFinding("vm-ocaml", StatusFail, fmt.Sprintf("OCAML_VERSION=%q: %v", pins["OCAML_VERSION"], err),
			"install-toolchain.sh would create a switch labctl's preflight refuses", vmPinFix("OCAML_VERSION", "4.14.2"))
	}
	switch s, detail := toolver.OCamlSupport(v); s {
	case toolver.Supported:
		return vmFinding("vm-ocaml", StatusOK, "OCAML_VERSION="+pins["OCAML_VERSION"]+": "+detail, "", "")
	case toolver.Unproven:
		return vmFinding("vm-ocaml", StatusWarn, "OCAML_VERSION="+pins["OCAML_VERSION"]+": "+detail,
			"the build may fail in make depend", vmPinFix("OCAML_VERSION", "4.14.2"))
	default:
		return vmFinding("vm-ocaml", StatusFail, "OCAML_VERSION="+pins["OCAML_VERSION"]+": "+detail,
			"no ocaml-solo5 release builds the xen target with it", vmPinFix("OCAML_VERSION", "4.14.2"))
	}
}

// vmMirage checks the MIRAGE_VERSION pin against the range config.ml
// needs.
func vmMirage(pins map[string]string) Finding {
	v, err := toolver.Mirage(pins["MIRAGE_VERSION"])
	switch {
	case err != nil:
		return vmFinding("vm-mirage", StatusFail, fmt.Sprintf("MIRAGE_VERSION=%q: %v", pins["MIRAGE_VERSION"], err),
			"install-toolchain.sh installs mirage.$MIRAGE_VERSION", vmPinFix("MIRAGE_VERSION", "4.11.1"))
	case !toolver.MirageConstraint().Check(v):
		return vmFinding("vm-mirage", StatusFail, fmt.Sprintf("MIRAGE_VERSION=%s: service/unikernel/config.ml needs %s", v, toolver.MirageRange),
			"mirage configure -t xen would fail on config.ml, or the guest would not ask for DHCP", vmPinFix("MIRAGE_VERSION", "4.11.1"))
	default:
		return vmFinding("vm-mirage", StatusOK, fmt.Sprintf("MIRAGE_VERSION=%s (config.ml: %s)", v, toolver.MirageRange), "", "")
	}
}

// vmToolchain checks the OPAMROOT and OPAM_SWITCH pins, which the VM's
// lab spec passes on as xen.opam_root and xen.opam_switch.
func vmToolchain(pins map[string]string) Finding {
	root, sw := pins["OPAMROOT"], pins["OPAM_SWITCH"]
	switch {
	case !filepath.IsAbs(root) || filepath.Clean(root) != root:
		return vmFinding("vm-toolchain", StatusFail, fmt.Sprintf("OPAMROOT=%q is not an absolute, clean path", root),
			"the VM's lab spec names it as xen.opam_root, which labctl refuses", vmPinFix("OPAMROOT", "/opt/labctl/opam"))
	case !regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+~-]*$`).MatchString(sw):
		return vmFinding("vm-toolchain", StatusFail, fmt.Sprintf("OPAM_SWITCH=%q is not an opam switch name", sw),
			"the VM's lab spec names it as xen.opam_switch, which labctl refuses", vmPinFix("OPAM_SWITCH", "mirage"))
	default:
		return vmFinding("vm-toolchain", StatusOK, fmt.Sprintf("mirage in %s, switch %s; the agent (sudo -n, secure_path) reaches it through the VM spec's xen.opam_root/opam_switch: opam exec --root %s --switch %s --set-root --set-switch --", root, sw, root, sw), "", "")
	}
}

// vmDepexts checks that the XEN_DEPEXTS pin lists every system package
// the xen target needs.
func vmDepexts(pins map[string]string) Finding {
	have := strings.FieldsFunc(pins["XEN_DEPEXTS"], func(r rune) bool { return r == ',' || r == ' ' })
	var missing []string
	for _, p := range xen.Depexts {
		found := false
		for _, h := range have {
			found = found || h == p
		}
		if !found {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return vmFinding("vm-depexts", StatusFail, fmt.Sprintf("XEN_DEPEXTS=%q lacks %s", pins["XEN_DEPEXTS"], strings.Join(missing, " ")),
			"make depend would stop: the xen target's packages need them and opam will not install system packages without a tty",
			vmPinFix("XEN_DEPEXTS", strings.Join(xen.Depexts, ",")))
	}
	return vmFinding("vm-depexts", StatusOK, "install-xen.sh installs XEN_DEPEXTS: "+strings.Join(have, " ")+" (the xen target's system packages)", "", "")
}
