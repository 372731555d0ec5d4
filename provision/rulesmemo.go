package provision

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/statedir"
)

// rulesMemo keeps iptables-save outputs by the digest of the nf_tables
// ruleset they were read from (netsetup.Ruleset). An iptables-save is an
// exec of 7–10 ms on a 2-core machine: most of a converged run's nat step,
// and the verify after a cold provision's iptables-restore (issue 13).
// Equal digests print the same rules with the same iptables-save binary,
// so what was read once, by any lab, in any namespace, is reused: a
// converged run and a teardown read nothing, and a provision that makes
// rules made before (a lab brought up again, the sim's fresh dom0)
// verifies them without an exec. It lives in the state root beside
// tools.json: a machine's rules are not one lab's. Only a cache: damaged,
// unreadable or unwritable, the rules are read anew.
type rulesMemo struct {
	Tool    string      `json:"tool"`    // iptables-save's binary (binaryKey): another one starts afresh
	Entries []memoEntry `json:"entries"` // oldest first
}

type memoEntry struct {
	Digest string `json:"digest"`
	Dump   string `json:"dump"`
}

// The memo is read on every run: a few labs' states, not a firewall's
// history. A dump larger than memoMaxDump (a machine with thousands of
// rules) is not kept; the oldest entries go past memoMaxEntries or
// memoMaxBytes.
const (
	memoMaxEntries = 16
	memoMaxDump    = 256 << 10
	memoMaxBytes   = 1 << 20
)

func (d *network) memoPath() string {
	return filepath.Join(filepath.Dir(d.StateDir), statedir.RulesMemoFile)
}

// readMemo returns the memo for the iptables-save binary on PATH (tool),
// empty when there is none or it is another binary's.
func (d *network) readMemo() (m rulesMemo, tool string) {
	tool, err := binaryKey("iptables-save")
	if err != nil {
		return rulesMemo{}, ""
	}
	b, err := os.ReadFile(d.memoPath())
	if err != nil || json.Unmarshal(b, &m) != nil || m.Tool != tool {
		return rulesMemo{Tool: tool}, tool
	}
	return m, tool
}

// recalled returns the iptables-save output kept for digest.
func (d *network) recalled(digest string) ([]byte, bool) {
	m, tool := d.readMemo()
	if tool == "" {
		return nil, false
	}
	for _, e := range m.Entries {
		if e.Digest == digest {
			return []byte(e.Dump), true
		}
	}
	return nil, false
}

// remember keeps dump as the output for digest, unless the command writes
// nothing.
func (d *network) remember(digest string, dump []byte) {
	if d.readOnly || len(dump) > memoMaxDump {
		return
	}
	m, tool := d.readMemo()
	if tool == "" {
		return
	}
	size := len(dump)
	kept := []memoEntry{{Digest: digest, Dump: string(dump)}}
	// Newest first while counting, then back to oldest first.
	for i := len(m.Entries) - 1; i >= 0 && len(kept) < memoMaxEntries; i-- {
		e := m.Entries[i]
		if e.Digest == digest {
			continue
		}
		if size += len(e.Dump); size > memoMaxBytes {
			break
		}
		kept = append(kept, e)
	}
	slices.Reverse(kept)
	b, err := json.Marshal(rulesMemo{Tool: tool, Entries: kept})
	if err != nil {
		return
	}
	// The dumps name every lab's and others' chains: 0600, like the journal.
	if err := procs.WriteFileAtomic(d.memoPath(), b, 0o600); err != nil {
		d.Log.Debug("keeping the rules read", "file", d.memoPath(), "err", err)
	}
}
