// Package statedir is the layout of labctl's state directory, here and on
// dom0: one definition for the engine, cmd, the support bundle and the
// script that prepares it on a remote dom0.
package statedir

import "path/filepath"

// DefaultRoot holds one directory per lab.
const DefaultRoot = "/var/lib/labctl"

// Files of a lab's directory.
const (
	JournalFile = "journal.jsonl" // what labctl changed, to undo it
	SpecFile    = "spec.yaml"     // the spec of the last provision
	DnsmasqDir  = "dnsmasq"       // the lab's dnsmasq: config, leases, log
	// RulesSeenFile: dom0's last iptables-save and the nf_tables generation
	// it was read at, kept by labctl before 2026-12-06 (now RulesMemoFile);
	// still the lab's own, so it goes with the lab.
	RulesSeenFile = "rules-seen.json"
)

// Files of the state root, shared by every lab on the machine.
const (
	ToolsFile = "tools.json" // tool versions by binary (provision/toolcache.go)
	// RulesMemoFile: iptables-save outputs by ruleset digest, so a run
	// need not read what it has read before (provision/rulesmemo.go).
	RulesMemoFile = "rules-memo.json"
)

// Files of a guest's directory.
const (
	GuestRecord = "guest.json"  // what the runtime started (vmctl.GuestRecord)
	ConsoleLog  = "console.log" // the guest's console
)

// Layout is where labctl keeps a lab's state under a state root: the one
// definition the host, dom0's agent and the remote prepare script share
// (issue 11: the layout was rebuilt in cmd, provision and a shell script).
//
//	<root>/bin/labctl                      the agent put on a remote dom0 (0700 dir)
//	<root>/<lab>/                          the lab (0711: dnsmasq, as nobody, reaches dnsmasq/)
//	<root>/<lab>/images/users.img          the users image (0700 dir: password hashes)
//	<root>/<lab>/guests/<name>/guest.json  a guest's record, beside its console.log
type Layout struct {
	Root string // DefaultRoot when empty
	Lab  string
}

// Of is the layout a lab's state directory belongs to.
func Of(labDir string) Layout {
	return Layout{Root: filepath.Dir(labDir), Lab: filepath.Base(labDir)}
}

func (l Layout) root() string {
	if l.Root == "" {
		return DefaultRoot
	}
	return l.Root
}

// Dir is the lab's state directory.
func (l Layout) Dir() string { return filepath.Join(l.root(), l.Lab) }

// Agent is where labctl is put on a remote dom0.
func (l Layout) Agent() string { return filepath.Join(l.root(), "bin", "labctl") }

// UsersImage is the lab's users image.
func (l Layout) UsersImage() string { return filepath.Join(l.Dir(), "images", "users.img") }

// Guests holds one directory per deployed guest.
func (l Layout) Guests() string { return filepath.Join(l.Dir(), "guests") }

// Guest is one guest's directory.
func (l Layout) Guest(name string) string { return filepath.Join(l.Guests(), name) }

// GuestFile is a file of a guest's: GuestRecord, ConsoleLog.
func (l Layout) GuestFile(name, file string) string { return filepath.Join(l.Guest(name), file) }

// Journal is the lab's journal.
func (l Layout) Journal() string { return filepath.Join(l.Dir(), JournalFile) }

// Spec is the spec of the lab's last provision.
func (l Layout) Spec() string { return filepath.Join(l.Dir(), SpecFile) }

// Dnsmasq is the lab's dnsmasq directory.
func (l Layout) Dnsmasq() string { return filepath.Join(l.Dir(), DnsmasqDir) }

// Prepare is the command that makes this layout's directories on a remote
// dom0 before the agent is put there, printing the machine type: the
// state root (0711), bin/ (0700), the lab (0711) and its images/ (0700).
// Existing directories keep their modes; the layout test runs it.
func (l Layout) Prepare() []string {
	return []string{"sh", "-c", prepareScript, "labctl-prepare", l.root(), l.Lab}
}

const prepareScript = `set -e
root=$1 lab=$2
if [ ! -d "$root" ]; then mkdir -p -- "$root"; chmod 0711 -- "$root"; fi
mkdir -p -- "$root/bin"; chmod 0700 -- "$root/bin"
if [ ! -d "$root/$lab" ]; then mkdir -p -- "$root/$lab"; chmod 0711 -- "$root/$lab"; fi
mkdir -p -- "$root/$lab/images"; chmod 0700 -- "$root/$lab/images"
uname -m
`
