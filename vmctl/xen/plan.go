package xen

import (
	"fmt"

	"github.com/labctl/labctl/vmctl"
)

// PlannedCommand is a command a deploy would run, and why.
type PlannedCommand struct {
	Argv []string `json:"argv"`
	Why  string   `json:"why"`
}

// Plan is what deploying one guest would do.
type Plan struct {
	Commands []PlannedCommand `json:"commands"`
	XLPath   string           `json:"xl_path"`
	XL       string           `json:"xl"` // the full .xl text Start would write
}

// Plan returns the commands that Build (when build is not nil) and Start
// would run for g, and the .xl Start would write. It runs nothing and
// touches no file, so it works on a machine without Xen.
func (r *Runtime) Plan(g vmctl.GuestSpec, build *BuildSpec) (Plan, error) {
	var p Plan
	if build != nil {
		if err := build.validate(); err != nil {
			return Plan{}, fmt.Errorf("xen: plan build %q: %w", build.Name, err)
		}
		for _, s := range BuildSteps(*build) {
			p.Commands = append(p.Commands, PlannedCommand{
				Argv: s.Argv,
				Why:  fmt.Sprintf("build %s (skipped when %s/%s matches the sources and tool versions)", s.Step, build.Dir, FingerprintFile),
			})
		}
	}
	text, err := RenderXL(g)
	if err != nil {
		return Plan{}, fmt.Errorf("xen: plan guest %q: %w", g.Name, err)
	}
	p.XLPath = XLFile(g)
	p.XL = string(text)
	p.Commands = append(p.Commands,
		PlannedCommand{Argv: []string{r.xl(), "list"}, Why: "find a running " + g.Name + " (same config: left alone; other config: xl destroy first)"},
		PlannedCommand{Argv: []string{r.xl(), "create", p.XLPath}, Why: "boot the guest from the rendered config"},
		PlannedCommand{Argv: r.consoleArgv(g), Why: "capture the console in the background to " + ConsoleLog(g) + " (pid in " + ConsolePIDFile(g) + ")"},
	)
	return p, nil
}
