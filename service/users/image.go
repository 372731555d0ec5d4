package users

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/labctl/labctl/internal/procs"
)

// ImageBlock is the users image's size granule: Xen block frontends
// present 4 KiB sectors, so the image is zero-padded to a multiple of it.
const ImageBlock = 4096

// Reader bounds: a users image is small (about 512 bytes per user), so
// anything bigger is corrupt or hostile.
//
// MaxUsers follows from MaxImageSize, so that the host never builds an
// image the guest's ReadImage refuses (issue 10 item 9: the host took
// 50,000 users, the guest refused images over 32 MiB, ~32k users). An
// entry is a 512-byte header and one 512-byte block of credential
// (maxCredOf < 512); the archive ends with two zero blocks.
const (
	MaxImageSize = 32 << 20
	MaxUsers     = (MaxImageSize - 2*tarBlock) / (2 * tarBlock)
	maxEntrySize = maxCredOf
	tarBlock     = 512
)

// One block of credential per entry is what MaxUsers assumes.
var _ = [tarBlock - maxCredOf]struct{}{}

// BuildImage returns the users image: a USTAR archive with one regular file
// per user (sorted by name), content the credential string, mode 0600,
// uid/gid 0, mtime 0 and no owner names, zero-padded to a multiple of
// ImageBlock. Identical users give identical bytes.
func BuildImage(creds map[string]Credential) ([]byte, error) {
	if len(creds) > MaxUsers {
		return nil, fmt.Errorf("users image: %d users, at most %d", len(creds), MaxUsers)
	}
	names := make([]string, 0, len(creds))
	for n := range creds {
		if err := CheckName(n); err != nil {
			return nil, fmt.Errorf("users image: %w", err)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		body := []byte(creds[n].String())
		hdr := &tar.Header{
			Typeflag: tar.TypeReg,
			Name:     n,
			Size:     int64(len(body)),
			Mode:     0o600,
			ModTime:  time.Unix(0, 0),
			Format:   tar.FormatUSTAR,
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, fmt.Errorf("users image: entry %s: %w", n, err)
		}
		if _, err := tw.Write(body); err != nil {
			return nil, fmt.Errorf("users image: entry %s: %w", n, err)
		}
	}
	if err := tw.Close(); err != nil {
		return nil, fmt.Errorf("users image: %w", err)
	}
	if r := buf.Len() % ImageBlock; r != 0 {
		buf.Write(make([]byte, ImageBlock-r))
	}
	if buf.Len() > MaxImageSize {
		return nil, fmt.Errorf("users image: %d bytes, the guest reads at most %d", buf.Len(), MaxImageSize)
	}
	return buf.Bytes(), nil
}

// ReadImage parses a users image. It rejects entries that are not regular
// files, names that are not valid user names (so no path traversal),
// duplicate names, entries over the credential size, malformed credentials,
// non-zero bytes after the archive's end, and images over MaxImageSize.
func ReadImage(r io.Reader) (map[string]Credential, error) {
	// Read it whole (it is small) so the end-of-archive marker and the
	// padding can be checked: a truncated image must not silently lose users.
	data, err := io.ReadAll(io.LimitReader(r, MaxImageSize+1))
	if err != nil {
		return nil, fmt.Errorf("users image: %w", err)
	}
	if len(data) > MaxImageSize {
		return nil, fmt.Errorf("users image: larger than %d bytes", MaxImageSize)
	}
	br := bytes.NewReader(data)
	tr := tar.NewReader(br)
	out := make(map[string]Credential)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("users image: entry %d: %w", len(out)+1, err)
		}
		if err := CheckName(hdr.Name); err != nil {
			return nil, fmt.Errorf("users image: entry %d: %w", len(out)+1, err)
		}
		if hdr.Typeflag != tar.TypeReg {
			return nil, fmt.Errorf("users image: entry %s: type %q is not a regular file", hdr.Name, hdr.Typeflag)
		}
		if _, dup := out[hdr.Name]; dup {
			return nil, fmt.Errorf("users image: entry %s: duplicate name", hdr.Name)
		}
		if hdr.Size < 0 || hdr.Size > int64(maxEntrySize) {
			return nil, fmt.Errorf("users image: entry %s: size %d over %d bytes", hdr.Name, hdr.Size, maxEntrySize)
		}
		if len(out) >= MaxUsers {
			return nil, fmt.Errorf("users image: more than %d users", MaxUsers)
		}
		body, err := io.ReadAll(tr)
		if err != nil {
			return nil, fmt.Errorf("users image: entry %s: %w", hdr.Name, err)
		}
		c, err := ParseCredential(string(body))
		if err != nil {
			return nil, fmt.Errorf("users image: entry %s: %w", hdr.Name, err)
		}
		out[hdr.Name] = c
	}
	// tar.Reader stops after the two zero blocks of the end marker, or at a
	// bare EOF on a header boundary (a truncated archive): only the former
	// leaves 1024 zero bytes just before the read position.
	end := len(data) - br.Len()
	if end < 2*512 || !allZero(data[end-2*512:end]) {
		return nil, errors.New("users image: no end-of-archive marker (truncated?)")
	}
	if !allZero(data[end:]) {
		return nil, errors.New("users image: non-zero data after the end of the archive")
	}
	return out, nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ReadImageFile reads and parses the users image at path; it also returns
// the image's SHA-256 (hex) for the boot trace and change detection.
func ReadImageFile(path string) (map[string]Credential, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", fmt.Errorf("users image %s: %w", path, err)
	}
	defer f.Close()
	h := sha256.New()
	creds, err := ReadImage(io.TeeReader(f, h))
	if err != nil {
		return nil, "", fmt.Errorf("%s: %w", path, err)
	}
	return creds, hex.EncodeToString(h.Sum(nil)), nil
}

// ImageSHA256 returns the hex SHA-256 of an image: a changed hash means the
// guest must be restarted to see the new users.
func ImageSHA256(img []byte) string {
	s := sha256.Sum256(img)
	return hex.EncodeToString(s[:])
}

// FileSHA256 returns the hex SHA-256 of the file at path (a deployed image).
func FileSHA256(path string) (string, error) {
	sum, err := procs.FileSHA256(path)
	if err != nil {
		return "", fmt.Errorf("users image: %w", err)
	}
	return sum, nil
}

// WriteImage writes img to path (mode 0600, atomically) unless the file
// already holds exactly these bytes; it reports whether it wrote.
func WriteImage(path string, img []byte) (bool, error) {
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, img) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("users image %s: %w", path, err)
	}
	if err := writeFileAtomic(path, img); err != nil {
		return false, fmt.Errorf("users image %s: %w", path, err)
	}
	return true, nil
}
