package xen

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Domain is one row of `xl list`.
type Domain struct {
	Name  string // "(null)" for a dying domain whose name is already gone
	ID    int
	MemMB int
	VCPUs int
	Flags string // the raw six-letter state column, e.g. "-b----"
	Time  float64
}

// xl prints the state as six positions, each either its letter or '-'.
const stateLetters = "rbpscd"

// State is the single word labctl uses for the domain's state. The most
// severe flag wins: a crashed domain may also show as paused and shutdown.
func (d Domain) State() string {
	has := func(c byte) bool { return strings.IndexByte(d.Flags, c) >= 0 }
	switch {
	case has('c'):
		return "crashed"
	case has('d'):
		return "dying"
	case has('s'):
		return "shutdown"
	case has('p'):
		return "paused"
	case has('r'):
		return "running"
	case has('b'):
		return "blocked"
	default:
		// No flag: runnable but not scheduled at the moment xl looked.
		return "idle"
	}
}

// Alive reports whether the domain is executing guest code: running,
// blocked (idle, waiting for events) or momentarily unscheduled.
func (d Domain) Alive() bool {
	switch d.State() {
	case "running", "blocked", "idle":
		return true
	}
	return false
}

// ParseList parses the table printed by `xl list` (no options).
func ParseList(out []byte) ([]Domain, error) {
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var doms []Domain
	header := false
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimRight(sc.Text(), " \t\r")
		if strings.TrimSpace(text) == "" {
			continue
		}
		if !header {
			f := strings.Fields(text)
			want := []string{"Name", "ID", "Mem", "VCPUs", "State", "Time(s)"}
			if len(f) != len(want) {
				return nil, fmt.Errorf("xl list: line %d: expected header %q, got %q", line, strings.Join(want, " "), text)
			}
			for i := range want {
				if f[i] != want[i] {
					return nil, fmt.Errorf("xl list: line %d: expected header %q, got %q", line, strings.Join(want, " "), text)
				}
			}
			header = true
			continue
		}
		d, err := parseListRow(text)
		if err != nil {
			return nil, fmt.Errorf("xl list: line %d: %w", line, err)
		}
		doms = append(doms, d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("xl list: %w", err)
	}
	if !header {
		return nil, fmt.Errorf("xl list: expected a header line starting with \"Name ID Mem VCPUs State Time(s)\", got no lines")
	}
	return doms, nil
}

// parseListRow reads the five numeric/state columns from the right: the
// name column is padded to 40 characters but longer names push it, and
// names are not guaranteed to be free of spaces.
func parseListRow(text string) (Domain, error) {
	f := strings.Fields(text)
	if len(f) < 6 {
		return Domain{}, fmt.Errorf("expected 6 columns (name, id, mem, vcpus, state, time), got %d in %q", len(f), text)
	}
	n := len(f)
	var d Domain
	var err error
	if d.ID, err = strconv.Atoi(f[n-5]); err != nil || d.ID < 0 {
		return Domain{}, fmt.Errorf("expected a domain id, got %q", f[n-5])
	}
	if d.MemMB, err = strconv.Atoi(f[n-4]); err != nil || d.MemMB < 0 {
		return Domain{}, fmt.Errorf("expected memory in MiB, got %q", f[n-4])
	}
	if d.VCPUs, err = strconv.Atoi(f[n-3]); err != nil || d.VCPUs < 0 {
		return Domain{}, fmt.Errorf("expected a vcpu count, got %q", f[n-3])
	}
	if err := checkFlags(f[n-2]); err != nil {
		return Domain{}, err
	}
	d.Flags = f[n-2]
	if d.Time, err = strconv.ParseFloat(f[n-1], 64); err != nil || d.Time < 0 {
		return Domain{}, fmt.Errorf("expected cpu time in seconds, got %q", f[n-1])
	}
	// The name is everything before the id column, inner spacing kept.
	d.Name = strings.TrimSpace(text[:fieldStarts(text)[n-5]])
	if d.Name == "" {
		return Domain{}, fmt.Errorf("expected a domain name before the id in %q", text)
	}
	return d, nil
}

func checkFlags(s string) error {
	if len(s) != len(stateLetters) {
		return fmt.Errorf("expected a %d-letter state like \"-b----\", got %q", len(stateLetters), s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '-' && s[i] != stateLetters[i] {
			return fmt.Errorf("expected state letter %q or '-' at position %d, got %q", stateLetters[i], i+1, s)
		}
	}
	return nil
}

// fieldStarts returns the byte offset where each strings.Fields field starts.
func fieldStarts(s string) []int {
	var starts []int
	in := false
	for i, r := range s {
		space := unicode.IsSpace(r)
		if !space && !in {
			starts = append(starts, i)
		}
		in = !space
	}
	return starts
}
