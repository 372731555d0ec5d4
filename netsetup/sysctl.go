package netsetup

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Sysctl reads and writes kernel parameters. /proc/sys/net shows the
// network namespace of the process that opens it, so the real one works on
// dom0's namespace when labctl runs there.
type Sysctl interface {
	Get(key string) (string, error)
	Set(key, value string) error
}

// ProcSys is the real Sysctl over /proc/sys.
type ProcSys struct{}

func (p ProcSys) path(key string) (string, error) {
	if key == "" || strings.Contains(key, "..") || strings.ContainsAny(key, "/\x00") {
		return "", fmt.Errorf("sysctl key %q: expected a dotted name like net.ipv4.ip_forward", key)
	}
	return filepath.Join("/proc/sys", strings.ReplaceAll(key, ".", "/")), nil
}

// Get returns the value without its trailing newline.
func (p ProcSys) Get(key string) (string, error) {
	path, err := p.path(key)
	if err != nil {
		return "", err
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("reading sysctl %s: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// Set writes value.
func (p ProcSys) Set(key, value string) error {
	path, err := p.path(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(value+"\n"), 0o644); err != nil {
		return fmt.Errorf("writing sysctl %s=%s: %w", key, value, err)
	}
	return nil
}
