package xen

// The test binary doubles as fake xl, mirage, make, opam and ocaml: a test
// links those names to os.Args[0] in a temporary bin directory and sets
// LABCTL_FAKE_STATE; TestMain then behaves as the tool named by argv[0].
// Every invocation appends its argv and working directory to argv.log in
// the state directory, so tests assert the exact command sequence.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/testenv"
)

const fakeStateEnv = "LABCTL_FAKE_STATE"

var fakeTools = []string{"xl", "mirage", "make", "opam", "ocaml", "pkg-config"}

func TestMain(m *testing.M) {
	if dir := os.Getenv(fakeStateEnv); dir != "" {
		tool := filepath.Base(os.Args[0])
		for _, t := range fakeTools {
			if t == tool {
				os.Exit(runFake(dir, tool, os.Args[1:]))
			}
		}
	}
	testenv.QuickRaceExit()
	os.Exit(m.Run())
}

// fakeEnv is a bin directory of fake tools and the state they share.
type fakeEnv struct {
	t     *testing.T
	bin   string
	state string
	// seen is how much of argv.log calls has returned. The log is never
	// removed: a fake running in the background (the console reader)
	// can append between a read and a remove, and its line was lost
	// (CI: TestRuntimeLifecycle timed out waiting for "xl console").
	seen int
}

// newFakeEnv links the named tools (all when none given) into a fresh bin
// directory, puts it first on PATH, and points the fakes at a fresh state.
func newFakeEnv(t *testing.T, tools ...string) *fakeEnv {
	t.Helper()
	if len(tools) == 0 {
		tools = fakeTools
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeEnv{t: t, bin: t.TempDir(), state: t.TempDir()}
	for _, tool := range tools {
		if err := os.Symlink(self, filepath.Join(f.bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv(fakeStateEnv, f.state)
	// A -race binary sleeps 1s at exit by default; the fakes exit often.
	t.Setenv("GORACE", strings.TrimSpace(os.Getenv("GORACE")+" atexit_sleep_ms=0"))
	// Keep /usr/bin for env(1), which Build uses to change directory.
	t.Setenv("PATH", f.bin+":/usr/bin:/bin")
	return f
}

func (f *fakeEnv) tool(name string) string { return filepath.Join(f.bin, name) }

func (f *fakeEnv) write(name, content string) {
	f.t.Helper()
	if err := os.WriteFile(filepath.Join(f.state, name), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeEnv) copyFixture(name, fixture string) {
	f.t.Helper()
	f.write(name, string(testenv.ReadFile(f.t, "testdata", "fixtures", fixture)))
}

// fakeCall is one recorded invocation.
type fakeCall struct {
	Tool string   `json:"tool"`
	Args []string `json:"args"`
	Dir  string   `json:"dir"`
}

func (c fakeCall) String() string { return strings.Join(append([]string{c.Tool}, c.Args...), " ") }

// calls returns the invocations recorded since the last call: whole
// lines only (a fake may be mid-write).
func (f *fakeEnv) calls() []fakeCall {
	f.t.Helper()
	b, err := os.ReadFile(filepath.Join(f.state, "argv.log"))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		f.t.Fatal(err)
	}
	b = b[f.seen:]
	b = b[:bytes.LastIndexByte(b, '\n')+1]
	f.seen += len(b)
	var out []fakeCall
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if line == "" {
			continue
		}
		var c fakeCall
		if err := json.Unmarshal([]byte(line), &c); err != nil {
			f.t.Fatalf("argv.log: %v", err)
		}
		out = append(out, c)
	}
	return out
}

// callStrings is calls() as "tool arg arg" strings.
func (f *fakeEnv) callStrings() []string {
	var s []string
	for _, c := range f.calls() {
		s = append(s, c.String())
	}
	return s
}

// fakeDomain is a domain the fake xl keeps in domains.json.
type fakeDomain struct {
	ID     int    `json:"id"`
	Name   string `json:"name"`
	Flags  string `json:"flags"`
	Kernel string `json:"kernel"`
	Memory int    `json:"memory"`
	VIF    string `json:"vif"`
	Disk   string `json:"disk"`
	Extra  string `json:"extra"`
}

type fakeXen struct {
	NextID  int          `json:"next_id"`
	Domains []fakeDomain `json:"domains"`
}

func loadXen(dir string) fakeXen {
	x := fakeXen{NextID: 1}
	if b, err := os.ReadFile(filepath.Join(dir, "domains.json")); err == nil {
		_ = json.Unmarshal(b, &x)
	}
	return x
}

func saveXen(dir string, x fakeXen) {
	b, _ := json.Marshal(x)
	_ = os.WriteFile(filepath.Join(dir, "domains.json"), b, 0o644)
}

func runFake(dir, tool string, args []string) int {
	cwd, _ := os.Getwd()
	rec, _ := json.Marshal(fakeCall{Tool: tool, Args: args, Dir: cwd})
	if lf, err := os.OpenFile(filepath.Join(dir, "argv.log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
		lf.Write(append(rec, '\n'))
		lf.Close()
	}
	// A file fail-<tool>-<first arg> makes that call fail with its content.
	sub := ""
	if len(args) > 0 {
		sub = args[0]
	}
	if msg, err := os.ReadFile(filepath.Join(dir, "fail-"+tool+"-"+sub)); err == nil {
		fmt.Fprint(os.Stderr, string(msg))
		return 2
	}
	switch tool {
	case "xl":
		return fakeXL(dir, args)
	case "mirage":
		return fakeMirage(dir, args)
	case "make":
		return fakeMake(args)
	case "opam":
		if len(args) > 1 && args[0] == "exec" && args[1] == "--" {
			path, err := exec.LookPath(args[2])
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 127
			}
			_ = syscall.Exec(path, args[2:], os.Environ())
			return 126
		}
		if len(args) == 2 && args[0] == "switch" && args[1] == "show" {
			// What an opam whose root is not initialised says (opam 2.1).
			b, err := os.ReadFile(filepath.Join(dir, "opam-switch.txt"))
			if err != nil {
				fmt.Fprintln(os.Stderr, "[ERROR] Opam has not been initialised, please run `opam init'")
				return 50
			}
			os.Stdout.Write(b)
			return 0
		}
		return printFile(dir, "opam-version.txt", args, "--version")
	case "pkg-config":
		// Present packages are files pkg-<name> in the state directory.
		if len(args) == 3 && args[0] == "--print-errors" && args[1] == "--exists" {
			if _, err := os.Stat(filepath.Join(dir, "pkg-"+args[2])); err != nil {
				fmt.Fprintf(os.Stderr, "Package %s was not found in the pkg-config search path.\n", args[2])
				return 1
			}
			return 0
		}
		fmt.Fprintf(os.Stderr, "fake pkg-config: unsupported %q\n", args)
		return 2
	case "ocaml":
		return printFile(dir, "ocaml-version.txt", args, "-version")
	}
	return 127
}

func printFile(dir, name string, args []string, want string) int {
	if len(args) != 1 || args[0] != want {
		fmt.Fprintf(os.Stderr, "fake: unexpected arguments %q\n", args)
		return 2
	}
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	os.Stdout.Write(b)
	return 0
}

func fakeXL(dir string, args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "Usage xl [-vfN] <subcommand> [args]")
		return 1
	}
	x := loadXen(dir)
	find := func(name string) int {
		for i, d := range x.Domains {
			if d.Name == name {
				return i
			}
		}
		return -1
	}
	switch {
	case args[0] == "info" && len(args) == 1:
		b, err := os.ReadFile(filepath.Join(dir, "xl-info.txt"))
		if err != nil {
			fmt.Fprintln(os.Stderr, "xencall: error: Could not obtain handle on privileged command interface: No such file or directory")
			return 1
		}
		os.Stdout.Write(b)
		return 0
	case args[0] == "list" && len(args) == 1:
		fmt.Println("Name                                        ID   Mem VCPUs\tState\tTime(s)")
		fmt.Printf("%-40s %5d %5d %5d     %s %8.1f\n", "Domain-0", 0, 1024, 1, "r-----", 12.5)
		for _, d := range x.Domains {
			fmt.Printf("%-40s %5d %5d %5d     %s %8.1f\n", d.Name, d.ID, d.Memory, 1, d.Flags, 0.3)
		}
		return 0
	case args[0] == "list" && len(args) == 3 && args[1] == "-l":
		i := find(args[2])
		if i < 0 {
			fmt.Fprintf(os.Stderr, "%s is an invalid domain identifier (rc=-6)\n", args[2])
			return 1
		}
		d := x.Domains[i]
		bridge, _ := SpecValue(d.VIF, "bridge")
		mac, _ := SpecValue(d.VIF, "mac")
		target, _ := SpecValue(d.Disk, "target")
		vdev, _ := SpecValue(d.Disk, "vdev")
		doc := []map[string]any{{"domid": d.ID, "config": map[string]any{
			"c_info": map[string]any{"type": "pvh", "name": d.Name},
			"b_info": map[string]any{"max_memkb": d.Memory * 1024, "target_memkb": d.Memory * 1024, "kernel": d.Kernel, "cmdline": d.Extra, "type.pvh": map[string]any{}},
			"disks":  []any{map[string]any{"pdev_path": target, "vdev": vdev, "format": "raw", "readwrite": 0}},
			"nics":   []any{map[string]any{"devid": 0, "mac": mac, "bridge": bridge}},
		}}}
		b, _ := json.MarshalIndent(doc, "", "    ")
		fmt.Println(string(b))
		return 0
	case args[0] == "create" && len(args) == 2:
		fmt.Fprintf(os.Stderr, "Parsing config from %s\n", args[1])
		b, err := os.ReadFile(args[1])
		if err != nil {
			fmt.Fprintf(os.Stderr, "Failed to read config file: %s: %v\n", args[1], err)
			return 1
		}
		cfg, err := ParseXL(b)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		name := cfg["name"].Str
		if find(name) >= 0 {
			fmt.Fprintf(os.Stderr, "libxl: error: libxl_create.c: domain with name %q already exists\n", name)
			return 3
		}
		d := fakeDomain{ID: x.NextID, Name: name, Flags: "-b----", Kernel: cfg["kernel"].Str,
			Memory: int(cfg["memory"].Num), Extra: cfg["extra"].Str}
		if v := cfg["vif"].List; len(v) == 1 {
			d.VIF = v[0]
		}
		if v := cfg["disk"].List; len(v) == 1 {
			d.Disk = v[0]
		}
		if cfg["type"].Str != "pvh" {
			fmt.Fprintln(os.Stderr, "fake xl: only pvh guests")
			return 1
		}
		x.NextID++
		x.Domains = append(x.Domains, d)
		saveXen(dir, x)
		return 0
	case args[0] == "destroy" && len(args) == 2:
		i := find(args[1])
		if i < 0 {
			fmt.Fprintf(os.Stderr, "%s is an invalid domain identifier (rc=-6)\n", args[1])
			return 1
		}
		x.Domains = append(x.Domains[:i], x.Domains[i+1:]...)
		saveXen(dir, x)
		return 0
	case args[0] == "console" && len(args) == 2:
		if find(args[1]) < 0 {
			fmt.Fprintf(os.Stderr, "%s is an invalid domain identifier (rc=-6)\n", args[1])
			return 1
		}
		b, _ := os.ReadFile(filepath.Join(dir, "console.txt"))
		os.Stdout.Write(b)
		// Like xenconsole: stay attached until killed, but bounded so a
		// broken test leaks nothing for long.
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM)
		select {
		case <-sig:
		case <-time.After(30 * time.Second):
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "fake xl: unsupported %q\n", args)
	return 1
}

var fakeRegister = regexp.MustCompile(`register\s+"([^"]*)"`)

func fakeMirage(dir string, args []string) int {
	if len(args) == 1 && args[0] == "--version" {
		return printFile(dir, "mirage-version.txt", args, "--version")
	}
	if len(args) == 3 && args[0] == "configure" && args[1] == "-t" && args[2] == "xen" {
		cfg, err := os.ReadFile("config.ml")
		if err != nil {
			fmt.Fprintln(os.Stderr, "mirage: config.ml not found in", mustWd())
			return 1
		}
		m := fakeRegister.FindSubmatch(cfg)
		if m == nil {
			fmt.Fprintln(os.Stderr, "mirage: no register in config.ml")
			return 1
		}
		os.WriteFile("Makefile", []byte("# fake\nNAME="+string(m[1])+"\n"), 0o644)
		fmt.Println("mirage: configured " + string(m[1]) + " for xen")
		return 0
	}
	fmt.Fprintf(os.Stderr, "fake mirage: unsupported %q\n", args)
	return 1
}

func fakeMake(args []string) int {
	mk, err := os.ReadFile("Makefile")
	if err != nil {
		fmt.Fprintln(os.Stderr, "make: *** No targets specified and no makefile found.  Stop.")
		return 2
	}
	name := strings.TrimPrefix(strings.TrimSpace(string(mk[strings.Index(string(mk), "NAME="):])), "NAME=")
	switch {
	case len(args) == 1 && args[0] == "depend":
		fmt.Println("opam install -y --deps-only ./mirage/" + name + "-xen.opam")
		fmt.Fprintln(os.Stderr, "[NOTE] Package ocaml-solo5 is already installed")
		return 0
	case len(args) == 1 && args[0] == "build":
		for i := 1; i <= 3; i++ {
			fmt.Printf("dune build: %d/3\n", i)
			time.Sleep(20 * time.Millisecond)
		}
		os.MkdirAll("dist", 0o755)
		if err := os.WriteFile(filepath.Join("dist", name+".xen"), []byte("fake xen kernel "+name+"\n"), 0o755); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		return 0
	}
	fmt.Fprintf(os.Stderr, "make: *** No rule to make target '%s'.  Stop.\n", strings.Join(args, " "))
	return 2
}

func mustWd() string { wd, _ := os.Getwd(); return wd }
