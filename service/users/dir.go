package users

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
)

// Dir is a users directory: one file per user, named by the user, holding
// the credential string (no newline), mode 0600 in a 0700 directory.
// Files starting with '.' are ignored (Add's temporary files).
type Dir struct {
	Path string
	// Iterations for new credentials; 0 means DefaultIterations.
	Iterations int
}

// maxFile bounds what Load reads from one user file.
const maxFile = 4096

// DemoUser and DemoPassword are the article's demo account. Demo only:
// anyone who read the article knows it; replace it for anything reachable.
const (
	DemoUser     = "john"
	DemoPassword = "password"
)

func (d Dir) iterations() int {
	if d.Iterations == 0 {
		return DefaultIterations
	}
	return d.Iterations
}

func (d Dir) ensure() error {
	if err := os.MkdirAll(d.Path, 0o700); err != nil {
		return fmt.Errorf("users dir %s: %w", d.Path, err)
	}
	// MkdirAll leaves an existing directory's mode alone; credentials must
	// not be readable by others even if someone loosened it.
	if err := os.Chmod(d.Path, 0o700); err != nil {
		return fmt.Errorf("users dir %s: %w", d.Path, err)
	}
	return nil
}

// Add creates user name with password; it fails with ErrExists if the user
// is already there.
func (d Dir) Add(name, password string) error {
	return d.write(name, password, false)
}

// Passwd sets the password of an existing user; ErrNotFound otherwise.
func (d Dir) Passwd(name, password string) error {
	return d.write(name, password, true)
}

func (d Dir) write(name, password string, replace bool) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if err := CheckPassword(password); err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	if err := d.ensure(); err != nil {
		return err
	}
	p := filepath.Join(d.Path, name)
	_, err := os.Lstat(p)
	switch {
	case err == nil && !replace:
		return fmt.Errorf("user %s: %w", name, ErrExists)
	case errors.Is(err, fs.ErrNotExist) && replace:
		return fmt.Errorf("user %s: %w", name, ErrNotFound)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("user %s: %w", name, err)
	}
	c, err := Hash(password, d.iterations())
	if err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	if err := writeFileAtomic(p, []byte(c.String())); err != nil {
		return fmt.Errorf("user %s: %w", name, err)
	}
	return nil
}

// writeFileAtomic writes via a dot-file in the same directory and renames,
// so a crash never leaves a half-written credential under a user's name.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// Remove deletes user name; ErrNotFound if absent.
func (d Dir) Remove(name string) error {
	if err := CheckName(name); err != nil {
		return err
	}
	if err := os.Remove(filepath.Join(d.Path, name)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("user %s: %w", name, ErrNotFound)
		}
		return fmt.Errorf("user %s: %w", name, err)
	}
	return nil
}

// List returns the user names, sorted. A missing directory has no users.
func (d Dir) List() ([]string, error) {
	ents, err := os.ReadDir(d.Path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("users dir %s: %w", d.Path, err)
	}
	var names []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") {
			continue
		}
		if err := CheckName(n); err != nil {
			return nil, fmt.Errorf("users dir %s: %w", d.Path, err)
		}
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("users dir %s: %s is not a regular file", d.Path, n)
		}
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// Load reads every user's credential.
func (d Dir) Load() (map[string]Credential, error) {
	names, err := d.List()
	if err != nil {
		return nil, err
	}
	out := make(map[string]Credential, len(names))
	for _, n := range names {
		c, err := readCredFile(filepath.Join(d.Path, n))
		if err != nil {
			return nil, fmt.Errorf("user %s: %w", n, err)
		}
		out[n] = c
	}
	return out, nil
}

func readCredFile(path string) (Credential, error) {
	// O_NOFOLLOW: List saw a regular file; do not follow one swapped for a link since.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return Credential{}, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFile+1))
	if err != nil {
		return Credential{}, err
	}
	if len(b) > maxFile {
		return Credential{}, &FieldError{Field: "credential", Reason: fmt.Sprintf("file larger than %d bytes", maxFile)}
	}
	return ParseCredential(string(b))
}

// Image builds the users image of the directory's users.
func (d Dir) Image() ([]byte, error) {
	creds, err := d.Load()
	if err != nil {
		return nil, err
	}
	return BuildImage(creds)
}

// SeedDemo adds the demo user john/password when the directory has no
// users at all, and reports whether it did. Demo only (see DemoUser).
func SeedDemo(d Dir) (bool, error) {
	names, err := d.List()
	if err != nil {
		return false, err
	}
	if len(names) > 0 {
		return false, nil
	}
	if err := d.Add(DemoUser, DemoPassword); err != nil {
		return false, fmt.Errorf("seed demo user: %w", err)
	}
	return true, nil
}
