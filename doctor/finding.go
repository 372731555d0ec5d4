// Package doctor diagnoses the lab in three layers (host, dom0, guest) and
// reports findings, each with what was seen, what it means and the exact
// command that fixes it. This package holds the findings model, the host
// layer's checks and the rule that blames VirtualBox from guest probes.
package doctor

import "strings"

// Layer is where a finding was made.
type Layer string

// Layers, outermost first.
const (
	LayerHost  Layer = "host"
	LayerDom0  Layer = "dom0"
	LayerGuest Layer = "guest"
)

// Status is a finding's verdict.
type Status string

// Statuses, by increasing severity.
const (
	StatusOK   Status = "ok"
	StatusWarn Status = "warn"
	StatusFail Status = "fail"
)

func (s Status) rank() int {
	switch s {
	case StatusOK:
		return 0
	case StatusWarn:
		return 1
	}
	return 2
}

// Finding is one check's result.
type Finding struct {
	Layer Layer  `json:"layer"`
	Check string `json:"check"` // stable id, e.g. "promisc-policy"
	// Subject names what a per-object check is about (the guest "auth-1").
	Subject string `json:"subject,omitempty"`
	Status  Status `json:"status"` // ok | warn | fail
	// Detail is what was seen ("adapter 2 Promisc Policy: deny").
	Detail string `json:"detail"`
	// Meaning explains the consequence for the lab; empty when ok.
	Meaning string `json:"meaning,omitempty"`
	// Fix is the exact command to run; empty when ok or none exists.
	Fix string `json:"fix,omitempty"`
}

// Worst is the most severe status among findings (ok when none).
func Worst(fs []Finding) Status {
	w := StatusOK
	for _, f := range fs {
		if f.Status.rank() > w.rank() {
			w = f.Status
		}
	}
	return w
}

// Find returns the finding with that check id.
func Find(fs []Finding, check string) (Finding, bool) {
	for _, f := range fs {
		if f.Check == check {
			return f, true
		}
	}
	return Finding{}, false
}

// shellQuote quotes an argument of a Fix command (VM names may hold
// spaces); "=" is safe since it never quotes a command name.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@%+,=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
