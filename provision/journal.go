package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/statedir"
)

// Journal kinds. Each records, before labctl changes anything, what it is
// about to create or the value it is about to replace, so teardown can
// undo exactly that — whatever the spec says by then.
const (
	KindLinkCreated = "link-created" // Link: labctl created it; undo deletes it
	KindLinkMaster  = "link-master"  // Link, Prior: its bridge before ("" none)
	KindLinkUp      = "link-up"      // Link, PriorBool: admin state before
	KindPromisc     = "link-promisc" // Link, PriorBool: IFF_PROMISC before
	KindAddrRemoved = "addr-removed" // Link, Addr: taken off Link; undo adds it back
	KindAddrAdded   = "addr-added"   // Link, Addr: put on Link; undo removes it
	KindSysctl      = "sysctl"       // Key, Prior
	KindIPTTable    = "ipt-table"    // Table: did not exist before labctl
	KindIPTChain    = "ipt-chain"    // Table, Chain: labctl's chain
	KindIPTJump     = "ipt-jump"     // Table, Chain, Spec: a jump into labctl's chain
	KindProcess     = "process"      // Name, Path (pidfile), Conf: a daemon labctl started
	KindDir         = "dir"          // Path: a directory labctl created for the lab
)

// Entry is one journal record.
type Entry struct {
	Kind      string    `json:"kind"`
	Link      string    `json:"link,omitempty"`
	Addr      string    `json:"addr,omitempty"`
	Key       string    `json:"key,omitempty"`
	Prior     string    `json:"prior,omitempty"`
	PriorBool *bool     `json:"prior_bool,omitempty"`
	Table     string    `json:"table,omitempty"`
	Chain     string    `json:"chain,omitempty"`
	Spec      string    `json:"spec,omitempty"`
	Name      string    `json:"name,omitempty"`
	Path      string    `json:"path,omitempty"`
	Conf      string    `json:"conf,omitempty"`
	Time      time.Time `json:"time"`
}

// id is what makes two entries the same object: the first record of an
// object wins, so a re-run never overwrites the value from before labctl.
func (e Entry) id() string {
	return e.Kind + "|" + e.Link + "|" + e.Addr + "|" + e.Key + "|" + e.Table + "|" + e.Chain + "|" + e.Spec + "|" + e.Path
}

// String describes the entry for progress and errors.
func (e Entry) String() string {
	switch e.Kind {
	case KindLinkCreated:
		return "created link " + e.Link
	case KindLinkMaster:
		return fmt.Sprintf("%s's bridge was %q", e.Link, e.Prior)
	case KindLinkUp:
		return fmt.Sprintf("%s up was %v", e.Link, deref(e.PriorBool))
	case KindPromisc:
		return fmt.Sprintf("%s promisc was %v", e.Link, deref(e.PriorBool))
	case KindAddrRemoved:
		return fmt.Sprintf("removed %s from %s", e.Addr, e.Link)
	case KindAddrAdded:
		return fmt.Sprintf("added %s to %s", e.Addr, e.Link)
	case KindSysctl:
		return fmt.Sprintf("%s was %s", e.Key, e.Prior)
	case KindIPTTable:
		return "created table " + e.Table
	case KindIPTChain:
		return "created chain " + e.Table + "/" + e.Chain
	case KindIPTJump:
		return fmt.Sprintf("added jump in %s/%s: %s", e.Table, e.Chain, e.Spec)
	case KindProcess:
		return "started " + e.Name
	case KindDir:
		return "created " + e.Path
	case KindGuest:
		return "started guest " + e.Name
	case KindNote:
		return e.Name + " at " + e.Path + ": " + e.Spec
	}
	return e.Kind
}

func deref(b *bool) bool { return b != nil && *b }

func boolp(b bool) *bool { return &b }

// Journal is the lab's record of changes: a write-ahead log in the state
// directory. Before each change, labctl appends what it is about to do
// (one write of whole JSON lines), so a killed labctl never leaves a change
// unrecorded. Appending costs no rename: rewriting a file through rename
// makes ext4 flush its data first (auto_da_alloc), and a cold provision
// records a handful of times.
//
// The file is a header line, then one {"record": Entry} or
// {"forget": Entry} per line. It is rewritten (compacted, atomically) only
// at open when it holds forgotten records or a torn last line.
//
// It is not fsynced: everything it describes (links, addresses, sysctls,
// rules, processes) is kernel state that a machine crash loses too. Boot
// and Netns say which kernel state it describes; a journal from another
// boot or another namespace is stale and set aside at open.
type Journal struct {
	mu      sync.Mutex // steps run concurrently
	path    string
	onDisk  bool // the file exists with its header
	Schema  int
	Lab     string
	Boot    string
	Netns   string
	Entries []Entry
	// Stale is where a journal of another boot or namespace was moved.
	Stale string
	// readOnly: opened for a command that changes nothing (status, a
	// plan); the file is never written, moved or removed.
	readOnly bool
}

// JournalSchema is the version of the journal's header line.
const JournalSchema = 2

type journalHeader struct {
	Schema int    `json:"schema"`
	Lab    string `json:"lab"`
	Boot   string `json:"boot_id"`
	Netns  string `json:"netns"`
}

type journalLine struct {
	Record *Entry `json:"record,omitempty"`
	Forget *Entry `json:"forget,omitempty"`
}

// here identifies the kernel state labctl runs against: the boot and the
// network namespace of the calling thread (see Options.Enter).
func here() (boot, ns string) {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	ns, _ = os.Readlink("/proc/thread-self/ns/net")
	return strings.TrimSpace(string(b)), ns
}

// JournalFile is the journal's name in the lab's state directory.
const JournalFile = statedir.JournalFile

// legacyJournalFile is the journal of labctl before the write-ahead
// format: one JSON document, schema 1. It is read once and converted.
const legacyJournalFile = "journal.json"

// OpenJournal reads the journal, or starts an empty one.
func OpenJournal(dir, lab string) (*Journal, error) { return openJournal(dir, lab, false) }

// ReadJournal reads the journal for a command that changes nothing: an
// empty, stale or legacy journal is reported as it is but left in place
// (issue 10: read-only commands must not write).
func ReadJournal(dir, lab string) (*Journal, error) { return openJournal(dir, lab, true) }

func openJournal(dir, lab string, ro bool) (*Journal, error) {
	boot, ns := here()
	fresh := &Journal{path: filepath.Join(dir, JournalFile), Schema: JournalSchema, Lab: lab, Boot: boot, Netns: ns, readOnly: ro}
	j, compact, err := readJournal(fresh.path)
	if errors.Is(err, os.ErrNotExist) {
		j, err = readLegacyJournal(filepath.Join(dir, legacyJournalFile))
		compact = err == nil
	}
	if ro {
		switch {
		case errors.Is(err, errNoRecords), errors.Is(err, os.ErrNotExist):
			return fresh, nil
		case err != nil:
			return nil, err
		case j.Boot != boot || j.Netns != ns:
			fresh.Stale = j.path // would be set aside by the next writer
			return fresh, nil
		}
		j.path, j.readOnly = fresh.path, true
		return j, nil
	}
	if errors.Is(err, errNoRecords) {
		// Nothing recorded means nothing changed; the file goes, so the
		// next run starts clean (it would be truncated anyway).
		if err := os.Remove(fresh.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("removing empty journal %s: %w", fresh.path, err)
		}
		return fresh, nil
	}
	if errors.Is(err, os.ErrNotExist) {
		return fresh, nil
	}
	if err != nil {
		return nil, err
	}
	if j.Boot != boot || j.Netns != ns {
		// The kernel state it described is gone (reboot, or the simulated
		// dom0 was re-created): undoing it would change the wrong things.
		stale := j.path + ".stale" // a legacy one keeps its name
		if err := os.Rename(j.path, stale); err != nil {
			return nil, fmt.Errorf("setting aside stale journal: %w", err)
		}
		fresh.Stale = stale
		return fresh, nil
	}
	if compact {
		if err := j.rewrite(); err != nil {
			return nil, err
		}
	}
	j.path = fresh.path
	return j, nil
}

// errNoRecords: the journal file holds no record, not even a whole
// header; it is an empty journal, not a corrupt one.
var errNoRecords = errors.New("journal holds no record")

// readJournal replays the file. compact says it should be rewritten: it
// holds forgotten records or a torn last line (a write cut short by a
// crash).
func readJournal(path string) (j *Journal, compact bool, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, false, err
	}
	bad := func(line int, why string) error {
		return fmt.Errorf("journal %s line %d: %s: move it away only if you will restore dom0 by hand", path, line, why)
	}
	lines := strings.SplitAfter(string(b), "\n")
	var h journalHeader
	// Empty, or a header cut short: the first write failed (a full disk)
	// or was killed. Nothing was recorded, so nothing was changed.
	const headerStart = `{"schema":` // how header() begins
	if len(b) == 0 || (len(lines) == 1 && !strings.HasSuffix(lines[0], "\n") &&
		(strings.HasPrefix(lines[0], headerStart) || strings.HasPrefix(headerStart, lines[0]))) {
		return nil, false, errNoRecords
	}
	if err := json.Unmarshal([]byte(lines[0]), &h); err != nil {
		return nil, false, bad(1, "not a journal header ("+err.Error()+")")
	}
	if h.Schema != JournalSchema {
		return nil, false, bad(1, fmt.Sprintf("schema %d, expected %d", h.Schema, JournalSchema))
	}
	j = &Journal{path: path, onDisk: true, Schema: h.Schema, Lab: h.Lab, Boot: h.Boot, Netns: h.Netns}
	for i, l := range lines[1:] {
		if l == "" {
			continue
		}
		var jl journalLine
		err := json.Unmarshal([]byte(l), &jl)
		switch {
		case err != nil && i == len(lines)-2 && !strings.HasSuffix(l, "\n"):
			compact = true // torn tail: that change never started
			continue
		case err != nil:
			return nil, false, bad(i+2, "not valid JSON ("+err.Error()+")")
		case jl.Record != nil:
			if !j.has(*jl.Record) {
				j.Entries = append(j.Entries, *jl.Record)
			}
		case jl.Forget != nil:
			j.drop(*jl.Forget)
			compact = true
		default:
			return nil, false, bad(i+2, "neither a record nor a forget")
		}
	}
	if len(j.Entries) == 0 {
		compact = true // a header alone (the first record's write failed): remove it
	}
	return j, compact, nil
}

// readLegacyJournal reads a schema-1 journal; the caller rewrites it as
// the current format, and the old file goes.
func readLegacyJournal(path string) (*Journal, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var old struct {
		Schema  int     `json:"schema"`
		Lab     string  `json:"lab"`
		Boot    string  `json:"boot_id"`
		Netns   string  `json:"netns"`
		Entries []Entry `json:"entries"`
	}
	if err := json.Unmarshal(b, &old); err != nil {
		return nil, fmt.Errorf("journal %s is not valid JSON (%v): move it away only if you will restore dom0 by hand", path, err)
	}
	if old.Schema != 1 {
		return nil, fmt.Errorf("journal %s: schema %d, expected 1: move it away only if you will restore dom0 by hand", path, old.Schema)
	}
	// Read in place: a stale one is set aside under its own name.
	return &Journal{path: path, Schema: JournalSchema, Lab: old.Lab, Boot: old.Boot, Netns: old.Netns, Entries: old.Entries}, nil
}

// Has reports whether an entry for the same object is recorded.
func (j *Journal) Has(e Entry) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.has(e)
}

func (j *Journal) has(e Entry) bool {
	id := e.id()
	for _, x := range j.Entries {
		if x.id() == id {
			return true
		}
	}
	return false
}

func (j *Journal) drop(e Entry) {
	id := e.id()
	out := j.Entries[:0]
	for _, x := range j.Entries {
		if x.id() != id {
			out = append(out, x)
		}
	}
	j.Entries = out
}

// List returns a copy of the entries.
func (j *Journal) List() []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Entry(nil), j.Entries...)
}

// Record appends the entries whose objects are not recorded yet, in one
// write, before returning: only then may the changes happen.
func (j *Journal) Record(es ...Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := time.Now().UTC().Truncate(time.Millisecond)
	var lines []journalLine
	for _, e := range es {
		if j.has(e) {
			continue
		}
		e.Time = now
		j.Entries = append(j.Entries, e)
		lines = append(lines, journalLine{Record: &e})
	}
	return j.append(lines)
}

// Forget drops the entry for the same object as e (after teardown undid it).
func (j *Journal) Forget(es ...Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	var lines []journalLine
	for _, e := range es {
		if !j.has(e) {
			continue
		}
		j.drop(e)
		lines = append(lines, journalLine{Forget: &e})
	}
	if len(lines) == 0 {
		return nil
	}
	// One append (one write and sync) for a batch undone together.
	return j.append(lines)
}

// Remove deletes the journal file (after a complete teardown).
func (j *Journal) Remove() error {
	j.Entries = nil
	j.onDisk = false
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing journal: %w", err)
	}
	return nil
}

func (j *Journal) header() []byte {
	b, _ := json.Marshal(journalHeader{Schema: j.Schema, Lab: j.Lab, Boot: j.Boot, Netns: j.Netns})
	return append(b, '\n')
}

// append writes lines (and the header, for a new file) with one write.
func (j *Journal) append(lines []journalLine) error {
	if len(lines) == 0 {
		return nil
	}
	if j.readOnly {
		return fmt.Errorf("journal %s: opened read-only (a command that changes nothing tried to record a change)", j.path)
	}
	var buf []byte
	if !j.onDisk {
		buf = j.header()
	}
	for _, l := range lines {
		b, err := json.Marshal(l)
		if err != nil {
			return err
		}
		buf = append(append(buf, b...), '\n')
	}
	flags := os.O_WRONLY | os.O_APPEND | os.O_CREATE
	var prev int64
	if !j.onDisk {
		flags |= os.O_TRUNC // a file without our header is not ours to extend
	} else if st, err := os.Stat(j.path); err == nil {
		prev = st.Size()
	}
	f, err := os.OpenFile(j.path, flags, 0o600)
	if err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	_, err = f.Write(buf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// A write cut short (ENOSPC) must leave no part of a line: a torn
		// record followed by a later whole one reads as corruption.
		if j.onDisk {
			os.Truncate(j.path, prev)
		} else {
			os.Remove(j.path)
		}
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	j.onDisk = true
	return nil
}

// rewrite replaces the file with the header and the live records
// (atomically), or removes it when nothing is recorded. A legacy journal
// is removed once its replacement is written.
func (j *Journal) rewrite() error {
	old := j.path
	j.path = filepath.Join(filepath.Dir(old), JournalFile)
	if len(j.Entries) == 0 {
		if err := j.Remove(); err != nil {
			return err
		}
	} else {
		buf := j.header()
		for i := range j.Entries {
			b, err := json.Marshal(journalLine{Record: &j.Entries[i]})
			if err != nil {
				return err
			}
			buf = append(append(buf, b...), '\n')
		}
		if err := procs.WriteFileAtomic(j.path, buf, 0o600); err != nil {
			return fmt.Errorf("journal: %w", err)
		}
		j.onDisk = true
	}
	if old != j.path {
		if err := os.Remove(old); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing converted journal: %w", err)
		}
	}
	return nil
}
