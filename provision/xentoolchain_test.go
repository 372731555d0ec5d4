package provision

import (
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/service/unikernel"
	"github.com/labctl/labctl/vmctl/xen"
)

// fakeOpam models what the toolchain contract depends on in opam 2.1.2:
// `opam exec` puts the switch's bin on PATH and exports OPAMROOT and
// OPAMSWITCH only with --set-root/--set-switch (src/state/opamEnv.ml
// updates_common); any other opam finds its root in $OPAMROOT, else
// ~/.opam, and says "Opam has not been initialised" when that has no
// config (src/client/opamCliMain.ml).
const fakeOpam = `#!/bin/sh
echo "opam $*" >> @LOG@
mode=$1
root= sw= setroot= setsw=
if [ "$mode" = exec ]; then
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--root) root=$2; shift 2 ;;
		--root=*) root=${1#--root=}; shift ;;
		--switch) sw=$2; shift 2 ;;
		--switch=*) sw=${1#--switch=}; shift ;;
		--set-root) setroot=1; shift ;;
		--set-switch) setsw=1; shift ;;
		--) shift; break ;;
		*) echo "fake opam: exec flag $1" >&2; exit 2 ;;
		esac
	done
fi
[ "$mode" = --version ] && { echo 2.1.2; exit 0; }
root=${root:-${OPAMROOT:-$HOME/.opam}}
[ -f "$root/config" ] || { echo "[ERROR] Opam has not been initialised, please run \` + "`" + `opam init'" >&2; exit 50; }
sw=${sw:-${OPAMSWITCH:-default}}
[ -d "$root/$sw" ] || { echo "[ERROR] The selected switch $sw is not installed." >&2; exit 50; }
case $mode in
exec)
	[ -n "$setroot" ] && export OPAMROOT="$root"
	[ -n "$setsw" ] && export OPAMSWITCH="$sw"
	PATH="$root/$sw/bin:$PATH" exec "$@" ;;
switch) echo "$sw" ;;
install|monorepo) echo "opam $mode: root $root switch $sw" ;;
*) echo "fake opam: $mode" >&2; exit 2 ;;
esac
`

// fakeMirage writes a Makefile shaped like mirage 4.11.1's
// (lib/functoria/makefile.ml): make depend runs opam again with only the
// environment make inherited.
const fakeMirage = `#!/bin/sh
case $1 in
--version) echo 4.11.1 ;;
configure)
	[ "$2 $3" = "-t xen" ] || { echo "fake mirage: $*" >&2; exit 2; }
	name=$(sed -n 's/^let () = register "\([^"]*\)".*/\1/p' config.ml)
	mkdir -p mirage && echo 'opam-version: "2.0"' > "mirage/$name-xen.opam"
	printf 'OPAM = opam\ndepend:\n\t$(OPAM) monorepo lock --build-only %s -l mirage/%s-xen.opam.locked\n\t$(OPAM) install ./mirage/%s-xen.opam --deps-only --yes\nbuild:\n\tmkdir -p dist && echo kernel > dist/%s.xen\n' "$name" "$name" "$name" "$name" > Makefile ;;
*) echo "fake mirage: $*" >&2; exit 2 ;;
esac
`

// sudoRunner runs commands the way `sudo -n` runs the agent's: sudo's
// secure_path (here with a bin directory holding only opam in front, for
// /usr/bin/opam) and none of the caller's environment.
type sudoRunner struct{ path, home string }

func (r sudoRunner) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	full := append([]string{"env", "-i", "PATH=" + r.path, "HOME=" + r.home, "LOGNAME=root", "USER=root"}, argv...)
	return xen.LocalRunner{}.Run(ctx, full, stdin, stdout, stderr)
}

// toolchainVM lays out what scripts/install-toolchain.sh leaves on the lab
// VM: an opam root with a switch whose bin has mirage and ocaml.
func toolchainVM(t *testing.T) (root string, run sudoRunner, log string) {
	t.Helper()
	for _, tool := range []string{"env", "make", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed", tool)
		}
	}
	dir := t.TempDir()
	root = filepath.Join(dir, "opt", "labctl", "opam")
	sw := filepath.Join(root, "mirage", "bin")
	bin := filepath.Join(dir, "usr-bin")
	log = filepath.Join(dir, "opam.log")
	home := filepath.Join(dir, "root") // no ~/.opam: the fallback fails
	for _, d := range []string{sw, bin, home} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		filepath.Join(root, "config"): "opam-version: \"2.0\"\n",
		filepath.Join(bin, "opam"):    strings.ReplaceAll(fakeOpam, "@LOG@", log),
		filepath.Join(sw, "mirage"):   fakeMirage,
		filepath.Join(sw, "ocaml"):    "#!/bin/sh\necho 'The OCaml toplevel, version 4.14.2'\n",
	}
	for p, content := range files {
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return root, sudoRunner{path: bin + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", home: home}, log
}

func buildWith(t *testing.T, x Xen, run sudoRunner) error {
	t.Helper()
	src, err := unikernel.Sources()
	if err != nil {
		t.Fatal(err)
	}
	rt := &xen.Runtime{Runner: run, Log: slog.New(slog.DiscardHandler)}
	spec := xen.BuildSpec{Name: unikernel.Name, Dir: filepath.Join(t.TempDir(), "build"), Sources: src, Prefix: x.ToolPrefix()}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err = rt.Build(ctx, spec, nil)
	return err
}

// TestXenToolchainContract runs the exact build commands labctl derives
// from the spec through fakes that fail unless the opam root and switch
// reach them, in sudo's environment: the spec the lab VM's provisioning
// writes (xen.opam_root, xen.opam_switch) builds; the prefix the docs used
// to give fails in make depend, as it did on a real dom0, and the spec
// refuses it.
func TestXenToolchainContract(t *testing.T) {
	root, run, _ := toolchainVM(t)

	good := Xen{OpamRoot: root, OpamSwitch: "mirage"}
	if errs := good.validateToolchain(); len(errs) > 0 {
		t.Fatalf("spec with opam_root refused: %v", errs)
	}
	for _, f := range xen.Preflight(context.Background(), run, xen.PreflightOptions{Prefix: good.ToolPrefix(), OpamRoot: root, OpamSwitch: "mirage"}) {
		if xen.IsBuildCheck(f.Check) && f.Check != "depexts" && f.Status != xen.StatusOK {
			t.Errorf("preflight %s through opam exec: %+v", f.Check, f)
		}
	}
	if err := buildWith(t, good, run); err != nil {
		t.Fatalf("build with xen.opam_root: %v", err)
	}

	old := Xen{Prefix: []string{"opam", "exec", "--root=" + root, "--switch=mirage", "--"}}
	err := buildWith(t, old, run)
	if err == nil || !strings.Contains(err.Error(), "depend") || !strings.Contains(err.Error(), "Opam has not been initialised") {
		t.Fatalf("build with the old prefix: err = %v, want make depend to fail with 'Opam has not been initialised'", err)
	}
	errs := old.validateToolchain()
	if len(errs) != 1 || errs[0].Field != "xen.prefix" || !strings.Contains(errs[0].Expected, "--set-root") {
		t.Fatalf("old prefix validation = %+v, want one xen.prefix error naming --set-root", errs)
	}
	var opamEnv *xen.Finding
	for _, f := range xen.Preflight(context.Background(), run, xen.PreflightOptions{Prefix: old.Prefix}) {
		if f.Check == "opam-env" {
			opamEnv = &f
		}
	}
	if opamEnv == nil || opamEnv.Status != xen.StatusFail || !strings.Contains(opamEnv.Fix, "xen.opam_root") {
		t.Fatalf("preflight opam-env with the old prefix = %+v, want a fail naming xen.opam_root", opamEnv)
	}

	// No xen section at all (the spec the provisioning wrote before):
	// mirage is not on sudo's PATH, and the fix names the spec, not
	// "opam install mirage", because it is installed.
	var mirage *xen.Finding
	for _, f := range xen.Preflight(context.Background(), run, xen.PreflightOptions{KnownRoots: []string{root}}) {
		if f.Check == "mirage" {
			mirage = &f
		}
	}
	if mirage == nil || mirage.Status != xen.StatusFail || !strings.Contains(mirage.Fix, "opam_root: "+root) {
		t.Fatalf("preflight mirage without a xen section = %+v, want a fix naming opam_root %s", mirage, root)
	}
}

func TestXenToolchainValidation(t *testing.T) {
	tests := []struct {
		name  string
		x     Xen
		field string // "" = valid
	}{
		{"empty", Xen{}, ""},
		{"root and switch", Xen{OpamRoot: "/opt/labctl/opam", OpamSwitch: "mirage"}, ""},
		{"local switch", Xen{OpamRoot: "/opt/labctl/opam", OpamSwitch: "/srv/unikernel"}, ""},
		{"relative root", Xen{OpamRoot: "opam", OpamSwitch: "mirage"}, "xen.opam_root"},
		{"unclean root", Xen{OpamRoot: "/opt/../opam", OpamSwitch: "mirage"}, "xen.opam_root"},
		{"root without switch", Xen{OpamRoot: "/opt/labctl/opam"}, "xen.opam_switch"},
		{"switch with a space", Xen{OpamRoot: "/opt/labctl/opam", OpamSwitch: "my switch"}, "xen.opam_switch"},
		{"switch without root", Xen{OpamSwitch: "mirage"}, "xen.opam_root"},
		{"root and prefix", Xen{OpamRoot: "/opt/labctl/opam", OpamSwitch: "mirage", Prefix: []string{"opam", "exec", "--"}}, "xen.prefix"},
		{"plain opam exec prefix", Xen{Prefix: []string{"opam", "exec", "--"}}, ""},
		{"prefix with set flags", Xen{Prefix: []string{"/usr/bin/opam", "exec", "--root", "/r", "--switch", "s", "--set-root", "--set-switch", "--"}}, ""},
		{"prefix without set-switch", Xen{Prefix: []string{"opam", "exec", "--switch=s", "--"}}, "xen.prefix"},
		{"other prefix", Xen{Prefix: []string{"/usr/local/bin/with-toolchain"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.x.validateToolchain()
			switch {
			case tt.field == "" && len(errs) > 0:
				t.Fatalf("errors = %+v, want none", errs)
			case tt.field != "" && (len(errs) != 1 || errs[0].Field != tt.field):
				t.Fatalf("errors = %+v, want one for %s", errs, tt.field)
			}
		})
	}
	// The derived prefix carries both set flags.
	p := Xen{OpamRoot: "/r", OpamSwitch: "s"}.ToolPrefix()
	if strings.Join(p, " ") != "opam exec --root /r --switch s --set-root --set-switch --" {
		t.Fatalf("ToolPrefix = %q", p)
	}
}
