package guest

import (
	"fmt"
	"os"
	"sync"
)

// DefaultConsoleMax bounds console.log: a guest logs a line per request
// (~135 bytes), so a flood or a long life would otherwise fill dom0's
// disk. One rotation is kept: at most twice this on disk.
const DefaultConsoleMax = 1 << 20

// ConsoleFile is an append-only file that rotates to path.1 (replacing
// the previous one) before a write would take it past max bytes. Writers
// that follow the log by name (labctl logs --follow, console) see the new
// file after a rotation. Safe for concurrent writers.
type ConsoleFile struct {
	mu   sync.Mutex
	path string
	max  int64
	f    *os.File
	size int64
}

// OpenConsoleFile opens (or creates, 0600) path for appending.
func OpenConsoleFile(path string, max int64) (*ConsoleFile, error) {
	if max <= 0 {
		max = DefaultConsoleMax
	}
	c := &ConsoleFile{path: path, max: max}
	if err := c.open(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *ConsoleFile) open() error {
	f, err := os.OpenFile(c.path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("console log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("console log: %w", err)
	}
	c.f, c.size = f, st.Size()
	return nil
}

// Write appends p, rotating first when p would not fit. A single write
// larger than max is written whole into a fresh file.
func (c *ConsoleFile) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.size > 0 && c.size+int64(len(p)) > c.max {
		c.f.Close()
		if err := os.Rename(c.path, c.path+".1"); err != nil && !os.IsNotExist(err) {
			// Cannot rotate: truncate rather than grow without bound.
			os.Truncate(c.path, 0)
		}
		if err := c.open(); err != nil {
			return 0, err
		}
	}
	n, err := c.f.Write(p)
	c.size += int64(n)
	return n, err
}

// Close closes the file.
func (c *ConsoleFile) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.f.Close()
}
