package xen

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labctl/labctl/vmctl"
)

// recordingRunner records the argv handed to the runner, before env(1)
// or opam exec rewrite it.
type recordingRunner struct {
	mu    sync.Mutex
	inner Runner
	argvs []string
}

func (r *recordingRunner) Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error {
	r.mu.Lock()
	r.argvs = append(r.argvs, strings.Join(argv, " "))
	r.mu.Unlock()
	return r.inner.Run(ctx, argv, stdin, stdout, stderr)
}

func (r *recordingRunner) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	a := r.argvs
	r.argvs = nil
	return a
}

func testSources() map[string][]byte {
	return map[string][]byte{
		"config.ml":    []byte("(* mirage >= 4.10.5 & < 4.12.0 *)\nopen Mirage\nlet () = register \"auth\" [ main ]\n"),
		"unikernel.ml": []byte("module Main = struct end\n"),
		"auth.ml":      []byte("let x = 1\n"),
	}
}

func buildEnv(t *testing.T) (*fakeEnv, *Runtime, *recordingRunner, BuildSpec) {
	f := newFakeEnv(t)
	f.write("mirage-version.txt", "4.11.0\n")
	f.write("opam-version.txt", "2.1.5\n")
	f.write("ocaml-version.txt", "The OCaml toplevel, version 4.14.2\n")
	rec := &recordingRunner{inner: LocalRunner{}}
	r := New(rec, nil, nil)
	spec := BuildSpec{Name: "auth", Dir: filepath.Join(t.TempDir(), "build", "auth"), Sources: testSources()}
	return f, r, rec, spec
}

func TestBuild(t *testing.T) {
	f, r, rec, spec := buildEnv(t)
	ctx := context.Background()
	var events []BuildEvent
	res, err := r.Build(ctx, spec, func(ev BuildEvent) { events = append(events, ev) })
	if err != nil {
		t.Fatal(err)
	}
	wantArgv := []string{
		"mirage --version", "ocaml -version", "opam --version",
		"env -C " + spec.Dir + " mirage configure -t xen",
		"env -C " + spec.Dir + " make depend",
		"env -C " + spec.Dir + " make build",
	}
	if got := rec.take(); strings.Join(got, "\n") != strings.Join(wantArgv, "\n") {
		t.Fatalf("argv:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(wantArgv, "\n"))
	}
	// The tools themselves ran in the build directory.
	for _, c := range f.calls() {
		if c.Tool == "make" || (c.Tool == "mirage" && c.Args[0] == "configure") {
			if c.Dir != spec.Dir {
				t.Errorf("%s ran in %s, want %s", c, c.Dir, spec.Dir)
			}
		}
	}
	if res.Skipped || res.Artifact != filepath.Join(spec.Dir, "dist", "auth.xen") || len(res.Fingerprint) != 64 {
		t.Fatalf("result = %+v", res)
	}
	if b, err := os.ReadFile(res.Artifact); err != nil || string(b) != "fake xen kernel auth\n" {
		t.Fatalf("artifact = %q, %v", b, err)
	}
	for name, content := range spec.Sources {
		if b, err := os.ReadFile(filepath.Join(spec.Dir, name)); err != nil || string(b) != string(content) {
			t.Errorf("source %s = %q, %v", name, b, err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(spec.Dir, FingerprintFile)); strings.TrimSpace(string(b)) != res.Fingerprint {
		t.Errorf("fingerprint file = %q, want %s", b, res.Fingerprint)
	}

	// Progress: each step starts, streams its lines, ends; time only grows.
	var seq []string
	var last time.Duration
	for _, ev := range events {
		if ev.Elapsed < last {
			t.Errorf("elapsed went back: %v after %v", ev.Elapsed, last)
		}
		last = ev.Elapsed
		seq = append(seq, ev.Step+" "+ev.Status+" "+ev.Line)
	}
	wantSeq := []string{
		"configure start env -C " + spec.Dir + " mirage configure -t xen",
		"configure output mirage: configured auth for xen",
		"configure done ",
		"depend start env -C " + spec.Dir + " make depend",
		// stdout and stderr are separate pipes: their lines are sorted here.
		"depend output [NOTE] Package ocaml-solo5 is already installed",
		"depend output opam install -y --deps-only ./mirage/auth-xen.opam",
		"depend done ",
		"build start env -C " + spec.Dir + " make build",
		"build output dune build: 1/3",
		"build output dune build: 2/3",
		"build output dune build: 3/3",
		"build done ",
	}
	if len(seq) >= 6 {
		sort.Strings(seq[4:6])
	}
	if strings.Join(seq, "\n") != strings.Join(wantSeq, "\n") {
		t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(seq, "\n"), strings.Join(wantSeq, "\n"))
	}
	var b1, b3 time.Duration
	for _, ev := range events {
		switch ev.Line {
		case "dune build: 1/3":
			b1 = ev.Elapsed
		case "dune build: 3/3":
			b3 = ev.Elapsed
		}
	}
	// The fake make sleeps 20ms between lines: they arrive as printed,
	// not all at the end.
	if b3-b1 < 30*time.Millisecond {
		t.Errorf("build lines not streamed: 1/3 at %v, 3/3 at %v", b1, b3)
	}

	// Nothing changed: only the version probes run.
	events = nil
	res2, err := r.Build(ctx, spec, func(ev BuildEvent) { events = append(events, ev) })
	if err != nil {
		t.Fatal(err)
	}
	if !res2.Skipped || res2.Fingerprint != res.Fingerprint {
		t.Fatalf("second build = %+v, want skipped with the same fingerprint", res2)
	}
	if got := rec.take(); strings.Join(got, "\n") != strings.Join(wantArgv[:3], "\n") {
		t.Fatalf("second build argv = %q", got)
	}
	if len(events) != 1 || events[0].Status != "skipped" {
		t.Fatalf("second build events = %+v", events)
	}

	// A source change, a toolchain change, a lost artifact: each rebuilds.
	changes := []struct {
		name string
		do   func()
	}{
		{"source", func() { spec.Sources["auth.ml"] = []byte("let x = 2\n") }},
		{"mirage upgrade", func() { f.write("mirage-version.txt", "4.11.1\n") }},
		{"ocaml switch", func() { f.write("ocaml-version.txt", "5.4.0\n") }},
		{"artifact removed", func() { os.Remove(res.Artifact) }},
	}
	prev := res.Fingerprint
	for _, c := range changes {
		c.do()
		res, err := r.Build(ctx, spec, nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if res.Skipped {
			t.Fatalf("%s: build skipped", c.name)
		}
		if got := rec.take(); len(got) != 6 {
			t.Fatalf("%s: argv = %q", c.name, got)
		}
		if c.name != "artifact removed" && res.Fingerprint == prev {
			t.Fatalf("%s: fingerprint unchanged", c.name)
		}
		prev = res.Fingerprint
	}
}

func TestBuildRemovesDroppedSources(t *testing.T) {
	_, r, _, spec := buildEnv(t)
	ctx := context.Background()
	spec.Sources["old.ml"] = []byte("let old = ()\n")
	if _, err := r.Build(ctx, spec, nil); err != nil {
		t.Fatal(err)
	}
	delete(spec.Sources, "old.ml")
	if _, err := r.Build(ctx, spec, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(spec.Dir, "old.ml")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old.ml still in the build dir: %v", err)
	}
	// Files mirage generated are not labctl's to remove.
	if _, err := os.Stat(filepath.Join(spec.Dir, "Makefile")); err != nil {
		t.Fatal(err)
	}
}

func TestBuildFailure(t *testing.T) {
	f, r, _, spec := buildEnv(t)
	ctx := context.Background()
	if _, err := r.Build(ctx, spec, nil); err != nil {
		t.Fatal(err)
	}
	spec.Sources["auth.ml"] = []byte("let x = oops\n")
	f.write("fail-make-build", "Error: Unbound value oops\n")
	var failed []BuildEvent
	_, err := r.Build(ctx, spec, func(ev BuildEvent) {
		if ev.Status == "failed" {
			failed = append(failed, ev)
		}
	})
	var ee *vmctl.ExitError
	if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(ee.Stderr, "Unbound value oops") {
		t.Fatalf("err = %v, want make's exit error", err)
	}
	if !strings.Contains(err.Error(), `build "auth": build:`) {
		t.Errorf("err = %v does not name the unikernel and step", err)
	}
	if len(failed) != 1 || failed[0].Step != "build" {
		t.Errorf("failed events = %+v", failed)
	}
	// The half-done build must not count as good: the old fingerprint is gone.
	if _, err := os.Stat(filepath.Join(spec.Dir, FingerprintFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("fingerprint after failure: %v", err)
	}
	os.Remove(filepath.Join(f.state, "fail-make-build"))
	res, err := r.Build(ctx, spec, nil)
	if err != nil || res.Skipped {
		t.Fatalf("rebuild after fix = %+v, %v", res, err)
	}
}

func TestBuildPrefix(t *testing.T) {
	f, r, rec, spec := buildEnv(t)
	spec.Prefix = []string{"opam", "exec", "--"}
	if _, err := r.Build(context.Background(), spec, nil); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"opam exec -- mirage --version", "opam exec -- ocaml -version", "opam exec -- opam --version",
		"env -C " + spec.Dir + " opam exec -- mirage configure -t xen",
		"env -C " + spec.Dir + " opam exec -- make depend",
		"env -C " + spec.Dir + " opam exec -- make build",
	}
	if got := rec.take(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("argv:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := f.calls(); len(got) != 12 {
		t.Fatalf("fake calls = %d (%v), want opam exec plus the tool for each of 6", len(got), got)
	}
}

func TestBuildRejects(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*BuildSpec)
		want string
	}{
		{"name differs from register", func(s *BuildSpec) { s.Name = "other" }, `config.ml registers "auth"`},
		{"relative dir", func(s *BuildSpec) { s.Dir = "build" }, "Dir: expected a clean absolute path"},
		{"no config.ml", func(s *BuildSpec) { delete(s.Sources, "config.ml") }, "expected config.ml"},
		{"no unikernel.ml", func(s *BuildSpec) { delete(s.Sources, "unikernel.ml") }, "expected unikernel.ml"},
		{"path in source name", func(s *BuildSpec) { s.Sources["../x.ml"] = nil }, "plain file names"},
		{"hidden source name", func(s *BuildSpec) { s.Sources[".labctl-fingerprint"] = nil }, "plain file names"},
		{"no register", func(s *BuildSpec) { s.Sources["config.ml"] = []byte("open Mirage\n") }, "no register"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r, rec, spec := buildEnv(t)
			tt.mod(&spec)
			_, err := r.Build(context.Background(), spec, nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want containing %q", err, tt.want)
			}
			if got := rec.take(); len(got) != 0 {
				t.Fatalf("ran %q for an invalid spec", got)
			}
		})
	}
}

func TestBuildMissingMirage(t *testing.T) {
	f := newFakeEnv(t, "make", "opam", "ocaml")
	_ = f
	r := New(nil, nil, nil)
	spec := BuildSpec{Name: "auth", Dir: filepath.Join(t.TempDir(), "b"), Sources: testSources()}
	_, err := r.Build(context.Background(), spec, nil)
	if err == nil || !notInstalled(err) || !strings.Contains(err.Error(), "mirage --version") {
		t.Fatalf("err = %v", err)
	}
}

// panicRunner fails the test if anything is run.
type panicRunner struct{ t *testing.T }

func (p panicRunner) Run(_ context.Context, argv []string, _ io.Reader, _, _ io.Writer) error {
	p.t.Fatalf("Plan ran %q", argv)
	return nil
}

func TestPlanGolden(t *testing.T) {
	r := New(panicRunner{t}, nil, nil)
	g := guest()
	g.Extra = "-l *:info"
	spec := BuildSpec{Name: "auth", Dir: "/var/lib/labctl/lab/build/auth", Sources: testSources()}
	p, err := r.Plan(g, &spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(p, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, "plan.json", append(b, '\n'))
	want, _ := RenderXL(g)
	if p.XL != string(want) || p.XLPath != XLFile(g) {
		t.Errorf("plan .xl = %q at %s", p.XL, p.XLPath)
	}
	// Plan touched nothing on disk.
	if _, err := os.Stat(g.StateDir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("plan created %s", g.StateDir)
	}
	// Without a build, only the guest's commands.
	p2, err := r.Plan(g, nil)
	if err != nil || len(p2.Commands) != 3 || p2.Commands[1].Argv[1] != "create" {
		t.Fatalf("plan without build = %+v, %v", p2, err)
	}
	if _, err := r.Plan(vmctl.GuestSpec{Name: "x"}, nil); err == nil || !strings.Contains(err.Error(), "Kernel") {
		t.Fatalf("plan of a bad guest: %v", err)
	}
}

func TestFormatElapsed(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0s", 1400 * time.Millisecond: "1s", 65 * time.Second: "1m05s", 10*time.Minute + 2*time.Second: "10m02s"} {
		if got := FormatElapsed(d); got != want {
			t.Errorf("FormatElapsed(%v) = %q, want %q", d, got, want)
		}
	}
}
