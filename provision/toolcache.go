package provision

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/statedir"
)

// Tool versions are asked once per binary: preflight runs on every
// provision and status, and two execs would be most of a converged run.
// The cache key is the resolved binary's identity (path after symlinks,
// inode, size, mtime), so an upgrade or an alternatives switch
// (iptables-nft ↔ iptables-legacy) asks again.
type toolCache struct {
	mu      sync.Mutex // preflight asks for the tools concurrently
	path    string
	Entries map[string]toolEntry `json:"tools"`
	dirty   bool
	// readOnly: a command that changes nothing asks the tools when
	// needed but leaves the cache file as it found it.
	readOnly bool
}

type toolEntry struct {
	Key     string `json:"key"`
	Version string `json:"version"`
}

// openToolCache opens the cache shared by every lab under the state root:
// the tools are the machine's, not a lab's.
func openToolCache(stateRoot string, readOnly bool) *toolCache {
	c := &toolCache{path: filepath.Join(stateRoot, statedir.ToolsFile), Entries: map[string]toolEntry{}, readOnly: readOnly}
	if b, err := os.ReadFile(c.path); err == nil {
		json.Unmarshal(b, c) // a damaged cache is only a cache: start over
		if c.Entries == nil {
			c.Entries = map[string]toolEntry{}
		}
	}
	return c
}

func binaryKey(tool string) (string, error) {
	p, err := exec.LookPath(tool)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(p)
	if err != nil {
		return "", err
	}
	var st syscall.Stat_t
	if err := syscall.Stat(real, &st); err != nil {
		return "", err
	}
	return fmt.Sprintf("%s:%d:%d:%d.%d", real, st.Ino, st.Size, st.Mtim.Sec, st.Mtim.Nsec), nil
}

// version returns the cached version line of tool, or runs ask and caches it.
func (c *toolCache) version(tool string, ask func() (string, error)) (string, error) {
	key, err := binaryKey(tool)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	e, ok := c.Entries[tool]
	c.mu.Unlock()
	if ok && e.Key == key {
		return e.Version, nil
	}
	v, err := ask()
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.Entries[tool] = toolEntry{Key: key, Version: v}
	c.dirty = true
	return v, nil
}

func (c *toolCache) save() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty || c.readOnly {
		return
	}
	if b, err := json.Marshal(c); err == nil {
		procs.WriteFileAtomic(c.path, b, 0o600)
	}
	c.dirty = false
}
