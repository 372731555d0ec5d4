package provision

import (
	"encoding/json"
	"errors"
	"fmt"
	"github.com/labctl/labctl/internal/procs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
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
	}
	return e.Kind
}

func deref(b *bool) bool { return b != nil && *b }

func boolp(b bool) *bool { return &b }

// Journal is the lab's record of changes, kept in the state directory and
// rewritten atomically (temporary file + rename) before each change it
// describes, so a killed labctl never leaves a change unrecorded.
//
// It is not fsynced: everything it describes (links, addresses, sysctls,
// rules, processes) is kernel state that a machine crash loses too. Boot
// and Netns say which kernel state it describes; a journal from another
// boot or another namespace is stale and set aside at open.
type Journal struct {
	mu      sync.Mutex // steps run concurrently
	path    string
	Schema  int     `json:"schema"`
	Lab     string  `json:"lab"`
	Boot    string  `json:"boot_id"`
	Netns   string  `json:"netns"`
	Entries []Entry `json:"entries"`
	// Stale is where a journal of another boot or namespace was moved.
	Stale string `json:"-"`
}

// here identifies the kernel state labctl runs against: the boot and the
// network namespace.
func here() (boot, ns string) {
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	ns, _ = os.Readlink("/proc/self/ns/net")
	return strings.TrimSpace(string(b)), ns
}

// JournalFile is the journal's name in the lab's state directory.
const JournalFile = "journal.json"

// OpenJournal reads the journal, or starts an empty one.
func OpenJournal(dir, lab string) (*Journal, error) {
	boot, ns := here()
	j := &Journal{path: filepath.Join(dir, JournalFile), Schema: 1, Lab: lab, Boot: boot, Netns: ns}
	b, err := os.ReadFile(j.path)
	if errors.Is(err, os.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading journal: %w", err)
	}
	if err := json.Unmarshal(b, j); err != nil {
		return nil, fmt.Errorf("journal %s is not valid JSON (%v): move it away only if you will restore dom0 by hand", j.path, err)
	}
	if j.Schema != 1 {
		return nil, fmt.Errorf("journal %s: schema %d, expected 1", j.path, j.Schema)
	}
	j.path = filepath.Join(dir, JournalFile)
	if j.Boot != boot || j.Netns != ns {
		// The kernel state it described is gone (reboot, or the simulated
		// dom0 was re-created): undoing it would change the wrong things.
		stale := j.path + ".stale"
		if err := os.Rename(j.path, stale); err != nil {
			return nil, fmt.Errorf("setting aside stale journal: %w", err)
		}
		return &Journal{path: j.path, Schema: 1, Lab: lab, Boot: boot, Netns: ns, Stale: stale}, nil
	}
	return j, nil
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

// List returns a copy of the entries.
func (j *Journal) List() []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return append([]Entry(nil), j.Entries...)
}

// Find returns the first entry matching kind and pred.
func (j *Journal) Find(kind string, pred func(Entry) bool) (Entry, bool) {
	for _, x := range j.List() {
		if x.Kind == kind && (pred == nil || pred(x)) {
			return x, true
		}
	}
	return Entry{}, false
}

// Record appends the entries whose objects are not recorded yet, and
// persists the journal (once) before returning: only then may the changes
// happen.
func (j *Journal) Record(es ...Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	now := time.Now().UTC().Truncate(time.Millisecond)
	added := false
	for _, e := range es {
		if j.has(e) {
			continue
		}
		e.Time = now
		j.Entries = append(j.Entries, e)
		added = true
	}
	if !added {
		return nil
	}
	return j.save()
}

// Forget drops the entry for the same object as e (after teardown undid it).
func (j *Journal) Forget(e Entry) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	id := e.id()
	out := j.Entries[:0]
	for _, x := range j.Entries {
		if x.id() != id {
			out = append(out, x)
		}
	}
	j.Entries = out
	return j.save()
}

// Empty reports whether nothing is recorded.
func (j *Journal) Empty() bool { return len(j.Entries) == 0 }

// Remove deletes the journal file (after a complete teardown).
func (j *Journal) Remove() error {
	j.Entries = nil
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("removing journal: %w", err)
	}
	return nil
}

func (j *Journal) save() error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	if err := procs.WriteFileAtomic(j.path, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}
