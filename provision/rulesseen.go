package provision

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/netsetup"
	"github.com/labctl/labctl/statedir"
)

// rulesSeen is dom0's last iptables-save and the nf_tables generation it
// was read at. iptables-save is an exec of ~7 ms on a 2-core machine, most
// of a converged run's nat step (issue 13: a converged re-run ≤ 30 ms).
// While the generation is unchanged no transaction has committed in that
// namespace since (netsetup.Generation), so the rules are the ones read
// then, and the dump is reused. Only a cache: unreadable, damaged or
// unwritable, the rules are read anew.
type rulesSeen struct {
	Boot string              `json:"boot_id"` // the namespace cookie in Gen is unique only within a boot
	Gen  netsetup.Generation `json:"generation"`
	Tool string              `json:"tool"` // iptables-save's binary (binaryKey): another backend reads anew
	Dump string              `json:"dump"`
}

func (d *network) rulesSeenPath() string {
	return filepath.Join(d.StateDir, statedir.RulesSeenFile)
}

// seenRules returns the dump read at gen, if that is the one kept.
func (d *network) seenRules(gen netsetup.Generation) ([]byte, bool) {
	b, err := os.ReadFile(d.rulesSeenPath())
	if err != nil {
		return nil, false
	}
	var s rulesSeen
	if boot, _ := here(); json.Unmarshal(b, &s) != nil || s.Boot != boot || s.Gen != gen {
		return nil, false
	}
	if tool, err := binaryKey("iptables-save"); err != nil || tool != s.Tool {
		return nil, false
	}
	return []byte(s.Dump), true
}

// keepRules keeps dump as read at gen, unless the command writes nothing.
func (d *network) keepRules(gen netsetup.Generation, dump []byte) {
	if d.readOnly {
		return
	}
	tool, err := binaryKey("iptables-save")
	if err != nil {
		return
	}
	boot, _ := here()
	b, err := json.Marshal(rulesSeen{Boot: boot, Gen: gen, Tool: tool, Dump: string(dump)})
	if err != nil {
		return
	}
	// The dump names the lab's and others' chains: 0600, like the journal.
	if err := procs.WriteFileAtomic(d.rulesSeenPath(), b, 0o600); err != nil {
		d.Log.Debug("keeping the rules read", "file", d.rulesSeenPath(), "err", err)
	}
}
