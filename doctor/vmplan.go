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
	var out []Finding
	add := func(check string, st Status, detail, meaning, fix string) {
		f := Finding{Layer: LayerVM, Check: check, Status: st, Detail: detail}
		if st != StatusOK {
			f.Meaning, f.Fix = meaning, fix
		}
		out = append(out, f)
	}
	pinFix := func(key, want string) string {
		return fmt.Sprintf("set %s=%s in scripts/versions.env (or the environment of vagrant up)", key, want)
	}
	atLeast := func(check, key string, min *version.Version, meaning string) {
		v, err := version.NewVersion(pins[key])
		switch {
		case err != nil:
			add(check, StatusFail, fmt.Sprintf("%s=%q is not a version", key, pins[key]), meaning, pinFix(key, min.String()))
		case v.LessThan(min):
			add(check, StatusFail, fmt.Sprintf("%s=%s is below %s", key, pins[key], min), meaning, pinFix(key, min.String()))
		default:
			add(check, StatusOK, fmt.Sprintf("%s=%s (labctl needs >= %s)", key, pins[key], min), "", "")
		}
	}
	atLeast("vm-xen", "XEN_MIN_VERSION", toolver.MinXen(),
		"Mirage >= 3.9 guests boot PVH only, which needs Xen 4.10 or later: check-xen.sh would accept a dom0 that cannot boot them")
	atLeast("vm-opam", "OPAM_MIN_VERSION", toolver.MinOpam(), "Mirage 4 needs opam 2.1 (opam-monorepo, depexts)")

	if v, err := toolver.OCaml(pins["OCAML_VERSION"]); err != nil {
		add("vm-ocaml", StatusFail, fmt.Sprintf("OCAML_VERSION=%q: %v", pins["OCAML_VERSION"], err),
			"install-toolchain.sh would create a switch labctl's preflight refuses", pinFix("OCAML_VERSION", "4.14.2"))
	} else {
		switch s, detail := toolver.OCamlSupport(v); s {
		case toolver.Supported:
			add("vm-ocaml", StatusOK, "OCAML_VERSION="+pins["OCAML_VERSION"]+": "+detail, "", "")
		case toolver.Unproven:
			add("vm-ocaml", StatusWarn, "OCAML_VERSION="+pins["OCAML_VERSION"]+": "+detail,
				"the build may fail in make depend", pinFix("OCAML_VERSION", "4.14.2"))
		default:
			add("vm-ocaml", StatusFail, "OCAML_VERSION="+pins["OCAML_VERSION"]+": "+detail,
				"no ocaml-solo5 release builds the xen target with it", pinFix("OCAML_VERSION", "4.14.2"))
		}
	}

	if v, err := toolver.Mirage(pins["MIRAGE_VERSION"]); err != nil {
		add("vm-mirage", StatusFail, fmt.Sprintf("MIRAGE_VERSION=%q: %v", pins["MIRAGE_VERSION"], err),
			"install-toolchain.sh installs mirage.$MIRAGE_VERSION", pinFix("MIRAGE_VERSION", "4.11.1"))
	} else if !toolver.MirageConstraint().Check(v) {
		add("vm-mirage", StatusFail, fmt.Sprintf("MIRAGE_VERSION=%s: service/unikernel/config.ml needs %s", v, toolver.MirageRange),
			"mirage configure -t xen would fail on config.ml, or the guest would not ask for DHCP", pinFix("MIRAGE_VERSION", "4.11.1"))
	} else {
		add("vm-mirage", StatusOK, fmt.Sprintf("MIRAGE_VERSION=%s (config.ml: %s)", v, toolver.MirageRange), "", "")
	}

	root, sw := pins["OPAMROOT"], pins["OPAM_SWITCH"]
	switch {
	case !filepath.IsAbs(root) || filepath.Clean(root) != root:
		add("vm-toolchain", StatusFail, fmt.Sprintf("OPAMROOT=%q is not an absolute, clean path", root),
			"the VM's lab spec names it as xen.opam_root, which labctl refuses", pinFix("OPAMROOT", "/opt/labctl/opam"))
	case !regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+~-]*$`).MatchString(sw):
		add("vm-toolchain", StatusFail, fmt.Sprintf("OPAM_SWITCH=%q is not an opam switch name", sw),
			"the VM's lab spec names it as xen.opam_switch, which labctl refuses", pinFix("OPAM_SWITCH", "mirage"))
	default:
		add("vm-toolchain", StatusOK, fmt.Sprintf("mirage in %s, switch %s; the agent (sudo -n, secure_path) reaches it through the VM spec's xen.opam_root/opam_switch: opam exec --root %s --switch %s --set-root --set-switch --", root, sw, root, sw), "", "")
	}

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
		add("vm-depexts", StatusFail, fmt.Sprintf("XEN_DEPEXTS=%q lacks %s", pins["XEN_DEPEXTS"], strings.Join(missing, " ")),
			"make depend would stop: the xen target's packages need them and opam will not install system packages without a tty",
			pinFix("XEN_DEPEXTS", strings.Join(xen.Depexts, ",")))
	} else {
		add("vm-depexts", StatusOK, "install-xen.sh installs XEN_DEPEXTS: "+strings.Join(have, " ")+" (the xen target's system packages)", "", "")
	}
	return out
}
