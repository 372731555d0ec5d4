package xen

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labctl/labctl/internal/procs"
)

// BuildSpec says what unikernel to build and where.
type BuildSpec struct {
	Name    string            // the name config.ml registers: the artifact is dist/<Name>.xen
	Dir     string            // absolute build directory; mirage writes its files here
	Sources map[string][]byte // file name -> content, written flat into Dir (config.ml, unikernel.ml, ...)
	// Prefix is put before every tool command, e.g. {"opam", "exec", "--"}
	// when the agent's environment has no `eval $(opam env)`.
	Prefix []string
	Mirage string // mirage binary, "mirage" when empty
	Make   string // make binary, "make" when empty
}

// BuildEvent is one line of build progress.
type BuildEvent struct {
	Step    string        // "configure", "depend", "build", or "fingerprint"
	Status  string        // "start", "output", "done", "failed", "skipped"
	Line    string        // an output line when Status is "output"
	Elapsed time.Duration // since Build began
}

// BuildResult is what Build produced.
type BuildResult struct {
	Artifact    string // absolute path of dist/<Name>.xen
	Fingerprint string // hex sha256 over sources and tool versions
	Skipped     bool   // the fingerprint matched the last good build
	Elapsed     time.Duration
}

// FingerprintFile is kept in the build directory after a good build.
const FingerprintFile = ".labctl-fingerprint"

// sourcesFile lists the sources labctl wrote, so a file dropped from the
// sources is removed before mirage's dune would compile it.
const sourcesFile = ".labctl-sources"

var (
	sourceName  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`) })
	registerArg = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`register\s+"([^"]*)"`) })
)

// BuildStep is one command of a build.
type BuildStep struct {
	Step string
	Argv []string
}

// BuildSteps returns the commands Build runs, in order. The runner has no
// working-directory argument (vmctl.Transport has none), so each command
// is run through `env -C <dir>`.
func BuildSteps(spec BuildSpec) []BuildStep {
	in := func(argv ...string) []string {
		out := []string{"env", "-C", spec.Dir}
		out = append(out, spec.Prefix...)
		return append(out, argv...)
	}
	mirage, mk := toolName(spec.Mirage, "mirage"), toolName(spec.Make, "make")
	return []BuildStep{
		{"configure", in(mirage, "configure", "-t", "xen")},
		{"depend", in(mk, "depend")},
		{"build", in(mk, "build")},
	}
}

func toolName(set, def string) string {
	if set == "" {
		return def
	}
	return set
}

// Artifact is the kernel a build of spec produces.
func Artifact(spec BuildSpec) string {
	return filepath.Join(spec.Dir, "dist", spec.Name+".xen")
}

func (spec BuildSpec) validate() error {
	if !guestName().MatchString(spec.Name) {
		return fmt.Errorf("Name: expected 1-64 of [A-Za-z0-9._-], got %q", spec.Name)
	}
	if !filepath.IsAbs(spec.Dir) || filepath.Clean(spec.Dir) != spec.Dir {
		return fmt.Errorf("Dir: expected a clean absolute path, got %q", spec.Dir)
	}
	for _, need := range []string{"config.ml", "unikernel.ml"} {
		if _, ok := spec.Sources[need]; !ok {
			return fmt.Errorf("Sources: expected %s among the sources", need)
		}
	}
	for name := range spec.Sources {
		if !sourceName().MatchString(name) {
			return fmt.Errorf("Sources: expected plain file names, got %q", name)
		}
	}
	m := registerArg().FindSubmatch(spec.Sources["config.ml"])
	if m == nil {
		return fmt.Errorf("Sources: config.ml has no register \"NAME\"")
	}
	if string(m[1]) != spec.Name {
		return fmt.Errorf("Name: config.ml registers %q, so mirage builds dist/%s.xen, not %q", m[1], m[1], spec.Name)
	}
	return nil
}

// Fingerprint hashes what decides the build's output: the sources, the
// build commands and the versions of the tools that run them.
func Fingerprint(spec BuildSpec, tools map[string]string) string {
	h := sha256.New()
	fmt.Fprintf(h, "labctl-xen-build/1\nname=%s\n", spec.Name)
	for _, s := range BuildSteps(BuildSpec{Name: spec.Name, Prefix: spec.Prefix, Mirage: spec.Mirage, Make: spec.Make}) {
		fmt.Fprintf(h, "step %s %q\n", s.Step, s.Argv)
	}
	for _, k := range sortedKeys(tools) {
		fmt.Fprintf(h, "tool %s=%q\n", k, tools[k])
	}
	for _, name := range sortedKeys(spec.Sources) {
		fmt.Fprintf(h, "file %s %d\n", name, len(spec.Sources[name]))
		h.Write(spec.Sources[name])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// toolVersions runs the version commands whose answers go into the
// fingerprint; a toolchain upgrade must rebuild.
func (r *Runtime) toolVersions(ctx context.Context, spec BuildSpec) (map[string]string, error) {
	probes := []struct{ key, tool, flag string }{
		{"mirage", toolName(spec.Mirage, "mirage"), "--version"},
		{"ocaml", "ocaml", "-version"},
		{"opam", "opam", "--version"},
	}
	out := map[string]string{}
	for _, p := range probes {
		var stdout bytes.Buffer
		argv := append(append([]string{}, spec.Prefix...), p.tool, p.flag)
		if err := r.Runner.Run(ctx, argv, nil, &stdout, nil); err != nil {
			return nil, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)
		}
		out[p.key] = strings.TrimSpace(stdout.String())
	}
	return out, nil
}

// Fresh reports whether the last good build in spec.Dir is current (its
// fingerprint matches the sources and tool versions, and the artifact is
// there), without building: deploy's observe step.
func (r *Runtime) Fresh(ctx context.Context, spec BuildSpec) (bool, string, error) {
	if err := spec.validate(); err != nil {
		return false, "", fmt.Errorf("xen: build %q: %w", spec.Name, err)
	}
	tools, err := r.toolVersions(ctx, spec)
	if err != nil {
		return false, "", fmt.Errorf("xen: build %q: %w", spec.Name, err)
	}
	fp := Fingerprint(spec, tools)
	old, err := os.ReadFile(filepath.Join(spec.Dir, FingerprintFile))
	if err != nil || strings.TrimSpace(string(old)) != fp {
		return false, fp, nil
	}
	st, err := os.Stat(Artifact(spec))
	return err == nil && st.Mode().IsRegular() && st.Size() > 0, fp, nil
}

// Build configures and builds the unikernel in spec.Dir: `mirage configure
// -t xen`, `make depend`, `make build`, each output line passed to
// progress (which may be nil) with the time since Build began. When the
// fingerprint equals the last good build's and the artifact is there,
// nothing runs.
func (r *Runtime) Build(ctx context.Context, spec BuildSpec, progress func(BuildEvent)) (BuildResult, error) {
	start := time.Now()
	var mu sync.Mutex
	emit := func(ev BuildEvent) {
		if progress == nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		ev.Elapsed = time.Since(start)
		progress(ev)
	}
	if err := spec.validate(); err != nil {
		return BuildResult{}, fmt.Errorf("xen: build %q: %w", spec.Name, err)
	}
	tools, err := r.toolVersions(ctx, spec)
	if err != nil {
		return BuildResult{}, fmt.Errorf("xen: build %q: %w", spec.Name, err)
	}
	fp := Fingerprint(spec, tools)
	res := BuildResult{Artifact: Artifact(spec), Fingerprint: fp}
	if old, err := os.ReadFile(filepath.Join(spec.Dir, FingerprintFile)); err == nil && strings.TrimSpace(string(old)) == fp {
		if st, err := os.Stat(res.Artifact); err == nil && st.Mode().IsRegular() && st.Size() > 0 {
			res.Skipped = true
			res.Elapsed = time.Since(start)
			emit(BuildEvent{Step: "fingerprint", Status: "skipped", Line: "sources and toolchain unchanged since the last build"})
			r.Log.Info("build up to date", "name", spec.Name, "fingerprint", fp[:12])
			return res, nil
		}
	}
	if err := r.writeSources(spec); err != nil {
		return BuildResult{}, fmt.Errorf("xen: build %q: %w", spec.Name, err)
	}
	for _, step := range BuildSteps(spec) {
		emit(BuildEvent{Step: step.Step, Status: "start", Line: strings.Join(step.Argv, " ")})
		r.Log.Info("build step", "name", spec.Name, "step", step.Step)
		stdout := &lineWriter{emit: func(l string) { emit(BuildEvent{Step: step.Step, Status: "output", Line: l}) }}
		stderr := &lineWriter{emit: func(l string) { emit(BuildEvent{Step: step.Step, Status: "output", Line: l}) }}
		err := r.Runner.Run(ctx, step.Argv, nil, stdout, stderr)
		stdout.Flush()
		stderr.Flush()
		if err != nil {
			emit(BuildEvent{Step: step.Step, Status: "failed", Line: err.Error()})
			return BuildResult{}, fmt.Errorf("xen: build %q: %s: %w", spec.Name, step.Step, err)
		}
		emit(BuildEvent{Step: step.Step, Status: "done"})
	}
	if st, err := os.Stat(res.Artifact); err != nil || !st.Mode().IsRegular() {
		return BuildResult{}, fmt.Errorf("xen: build %q: make build succeeded but %s is missing", spec.Name, res.Artifact)
	}
	if err := procs.WriteFileAtomic(filepath.Join(spec.Dir, FingerprintFile), []byte(fp+"\n"), 0o600); err != nil {
		return BuildResult{}, fmt.Errorf("xen: build %q: %w", spec.Name, err)
	}
	res.Elapsed = time.Since(start)
	r.Log.Info("built unikernel", "name", spec.Name, "artifact", res.Artifact, "elapsed", res.Elapsed.Round(time.Millisecond))
	return res, nil
}

// writeSources puts the sources into the build directory. The old
// fingerprint goes first, so a build that fails half-way is not taken
// for a good one next time.
func (r *Runtime) writeSources(spec BuildSpec) error {
	if err := os.MkdirAll(spec.Dir, 0o700); err != nil {
		return fmt.Errorf("build dir: %w", err)
	}
	if err := os.Remove(filepath.Join(spec.Dir, FingerprintFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("old fingerprint: %w", err)
	}
	if old, err := os.ReadFile(filepath.Join(spec.Dir, sourcesFile)); err == nil {
		for _, name := range strings.Fields(string(old)) {
			if _, keep := spec.Sources[name]; !keep && sourceName().MatchString(name) {
				if err := os.Remove(filepath.Join(spec.Dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
					return fmt.Errorf("stale source %s: %w", name, err)
				}
			}
		}
	}
	names := sortedKeys(spec.Sources)
	for _, name := range names {
		if err := procs.WriteFileAtomic(filepath.Join(spec.Dir, name), spec.Sources[name], 0o644); err != nil {
			return err
		}
	}
	return procs.WriteFileAtomic(filepath.Join(spec.Dir, sourcesFile), []byte(strings.Join(names, "\n")+"\n"), 0o600)
}

// lineWriter calls emit once per output line. opam and dune redraw
// progress with '\r', so that ends a line too.
type lineWriter struct {
	emit func(string)
	buf  []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexAny(w.buf, "\r\n")
		if i < 0 {
			break
		}
		if line := strings.TrimRight(string(w.buf[:i]), " \t"); line != "" {
			w.emit(line)
		}
		w.buf = w.buf[i+1:]
	}
	// A tool printing megabytes without a newline still gets shown.
	if len(w.buf) > 64<<10 {
		w.Flush()
	}
	return len(p), nil
}

// Flush emits what is left after the last newline.
func (w *lineWriter) Flush() {
	if line := strings.TrimRight(string(w.buf), " \t"); line != "" {
		w.emit(line)
	}
	w.buf = w.buf[:0]
}

// FormatElapsed renders an elapsed time the way build progress shows it: "1m05s".
func FormatElapsed(d time.Duration) string {
	d = d.Round(time.Second)
	m := int(d / time.Minute)
	s := int((d % time.Minute) / time.Second)
	if m == 0 {
		return strconv.Itoa(s) + "s"
	}
	return fmt.Sprintf("%dm%02ds", m, s)
}
