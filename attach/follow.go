package attach

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// Follow copies the file at path to w, from its start (fromEnd false) or
// from its current end, and then whatever is appended, until ctx is done
// (which is success). It polls: a console log is written by another
// process and lives on any filesystem. A file that is truncated is read
// again from its start; one that is replaced (a new inode) is reopened,
// like tail -F. A file that does not exist yet is waited for. (A file
// truncated and regrown past the old offset within one poll is not seen
// as truncated: console logs are only appended to.)
func Follow(ctx context.Context, path string, w io.Writer, fromEnd bool, poll time.Duration) error {
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	var f *os.File
	var ino uint64
	var off int64
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	buf := make([]byte, 32*1024)
	first := true
	for {
		if f == nil {
			nf, err := os.Open(path)
			switch {
			case err == nil:
				f = nf
				st, err := f.Stat()
				if err != nil {
					return fmt.Errorf("follow %s: %w", path, err)
				}
				ino, off = inode(st), 0
				if first && fromEnd {
					off = st.Size()
				}
			case !errors.Is(err, os.ErrNotExist):
				return fmt.Errorf("follow %s: %w", path, err)
			}
			first = false
		}
		if f != nil {
			for {
				n, err := f.ReadAt(buf, off)
				if n > 0 {
					if _, werr := w.Write(buf[:n]); werr != nil {
						return werr
					}
					off += int64(n)
				}
				if err == io.EOF || n == 0 {
					break
				}
				if err != nil {
					return fmt.Errorf("follow %s: %w", path, err)
				}
			}
			// Truncated, or replaced by another file of that name?
			if st, err := os.Stat(path); err == nil {
				if inode(st) != ino {
					f.Close()
					f = nil
					continue
				}
				if st.Size() < off {
					off = 0
					continue
				}
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(poll):
		}
	}
}

func inode(st os.FileInfo) uint64 {
	if s, ok := st.Sys().(*syscall.Stat_t); ok {
		return s.Ino
	}
	return 0
}
