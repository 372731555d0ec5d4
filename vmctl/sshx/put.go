package sshx

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/vmctl"
)

// putScript writes stdin to a temporary file next to the destination,
// checks its size, sets the mode and renames it over the destination, so a
// reader never sees a partial file and an interrupted upload leaves none.
const putScript = `set -e
dst=$1 mode=$2 size=$3
dir=$(dirname -- "$dst")
tmp=$(mktemp "$dir/.labctl-put.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
cat > "$tmp"
got=$(wc -c < "$tmp")
if [ "$got" -ne "$size" ]; then
	echo "short upload: got $got of $size bytes" >&2
	exit 1
fi
chmod "$mode" "$tmp"
mv -f -- "$tmp" "$dst"
trap - EXIT
`

// Put copies the local regular file to path on the target with mode,
// atomically (temporary file in the same directory, then rename).
func (t *Transport) Put(ctx context.Context, local, path string, mode os.FileMode) error {
	f, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("put to %s: %w", t, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("put %s to %s: %w", local, t, err)
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("put %s to %s: not a regular file", local, t)
	}
	if path == "" {
		return fmt.Errorf("put %s to %s: empty destination path", local, t)
	}
	argv := []string{"sh", "-c", putScript, "labctl-put", path, fmt.Sprintf("%04o", mode.Perm()), strconv.FormatInt(st.Size(), 10)}
	if err := t.Run(ctx, argv, f, nil, nil); err != nil {
		return fmt.Errorf("put %s to %s:%s: %w", local, t, path, err)
	}
	return nil
}

// sumScript prints the sha256sum line and the octal mode of a regular
// file, or nothing when it does not exist.
const sumScript = `if [ -f "$1" ]; then sha256sum -- "$1" && stat -c %a -- "$1"; fi`

// RemoteFile is what PutIfChanged saw of the destination.
type RemoteFile struct {
	Exists bool
	SHA256 string // lower-case hex
	Mode   os.FileMode
}

// ParseSumAndMode parses sumScript's output: empty for a missing file, else
// a sha256sum line ("<hex>  <name>", with a leading '\' when GNU escaped
// the name) and a line with the octal mode.
func ParseSumAndMode(out string) (RemoteFile, error) {
	sc := bufio.NewScanner(strings.NewReader(out))
	var lines []string
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return RemoteFile{}, fmt.Errorf("read checksum output: %w", err)
	}
	if len(lines) == 0 {
		return RemoteFile{}, nil
	}
	if len(lines) != 2 {
		return RemoteFile{}, fmt.Errorf("checksum output: %d lines, want 2: %q", len(lines), out)
	}
	fields := strings.Fields(lines[0])
	sum := strings.TrimPrefix(fields[0], `\`)
	if len(sum) != 64 {
		return RemoteFile{}, fmt.Errorf("checksum output: %q is not a SHA-256", fields[0])
	}
	if _, err := hex.DecodeString(sum); err != nil {
		return RemoteFile{}, fmt.Errorf("checksum output: %q is not hex: %w", sum, err)
	}
	m, err := strconv.ParseUint(lines[1], 8, 32)
	if err != nil || m > 0o7777 {
		return RemoteFile{}, fmt.Errorf("checksum output: bad mode %q", lines[1])
	}
	return RemoteFile{Exists: true, SHA256: strings.ToLower(sum), Mode: os.FileMode(m).Perm()}, nil
}

// PutIfChanged uploads local to path on tr unless the target's copy has
// the same SHA-256 and mode (labctl's own binary on dom0 is ~10 MB: skip
// it when identical). It works over any Transport with sha256sum and GNU
// or busybox stat on the target, and reports whether it uploaded.
func PutIfChanged(ctx context.Context, tr vmctl.Transport, local, path string, mode os.FileMode) (bool, error) {
	want, err := procs.FileSHA256(local)
	if err != nil {
		return false, err
	}
	var out bytes.Buffer
	err = tr.Run(ctx, []string{"sh", "-c", sumScript, "labctl-sum", path}, nil, &out, nil)
	var ee *vmctl.ExitError
	if err != nil && !errors.As(err, &ee) {
		return false, fmt.Errorf("checksum %s on %s: %w", path, tr, err)
	}
	var have RemoteFile
	if err == nil {
		if have, err = ParseSumAndMode(out.String()); err != nil {
			return false, fmt.Errorf("checksum %s on %s: %w", path, tr, err)
		}
	}
	// A failed check (e.g. unreadable file) just means: upload.
	if have.Exists && have.SHA256 == want && have.Mode == mode.Perm() {
		return false, nil
	}
	if err := tr.Put(ctx, local, path, mode); err != nil {
		return false, err
	}
	return true, nil
}
