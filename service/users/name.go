// Package users keeps the authentication service's users: a directory with
// one file per user holding a PBKDF2-SHA256 credential, and the users image
// (a deterministic tar archive) that guests read as their key/value store.
package users

import (
	"errors"
	"fmt"
	"strings"
)

// MaxNameLen bounds user names: they become file names and tar entry names
// (USTAR holds 100 bytes), and are echoed in "hello U!".
const MaxNameLen = 64

// MaxPasswordLen bounds passwords accepted by Add; the handler never lets a
// longer password match.
const MaxPasswordLen = 1024

// FieldError names the offending field and value, so a CLI can say which
// argument is wrong.
type FieldError struct {
	Field  string // "name", "password", "credential", ...
	Value  string // the offending value (never set for passwords)
	Reason string
}

func (e *FieldError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("%s %q: %s", e.Field, e.Value, e.Reason)
}

// Sentinel errors, wrapped with the user name.
var (
	ErrExists   = errors.New("user already exists")
	ErrNotFound = errors.New("no such user")
)

// ValidName reports whether name is a valid user name: 1..MaxNameLen bytes
// of [A-Za-z0-9._-], not starting with '.'. The charset excludes '/', NUL
// and anything needing escaping, and the leading-dot rule excludes "." and
// "..", so a valid name is always a plain file name inside the users store.
func ValidName(name string) bool { return CheckName(name) == nil }

// CheckName returns a *FieldError for field "name" when name is invalid.
func CheckName(name string) error {
	shown := name
	if len(shown) > MaxNameLen+8 {
		shown = shown[:MaxNameLen+8] + "..."
	}
	switch {
	case name == "":
		return &FieldError{Field: "name", Reason: "must not be empty"}
	case len(name) > MaxNameLen:
		return &FieldError{Field: "name", Value: shown, Reason: fmt.Sprintf("longer than %d bytes", MaxNameLen)}
	case name[0] == '.':
		return &FieldError{Field: "name", Value: shown, Reason: "must not start with '.'"}
	}
	for i := 0; i < len(name); i++ {
		if !nameByte(name[i]) {
			return &FieldError{Field: "name", Value: shown, Reason: fmt.Sprintf("byte %d (%q) is not in [A-Za-z0-9._-]", i, name[i])}
		}
	}
	return nil
}

func nameByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-'
}

// CheckPassword returns a *FieldError for field "password" (never echoing
// it) when password cannot be stored: empty passwords could never log in
// (an empty parameter means "No user given"), over-long ones never match,
// and NUL is refused because HMAC's zero-padding makes "pw\x00" equal "pw".
func CheckPassword(password string) error {
	switch {
	case password == "":
		return &FieldError{Field: "password", Reason: "must not be empty"}
	case len(password) > MaxPasswordLen:
		return &FieldError{Field: "password", Reason: fmt.Sprintf("longer than %d bytes", MaxPasswordLen)}
	case strings.IndexByte(password, 0) >= 0:
		return &FieldError{Field: "password", Reason: "must not contain NUL"}
	}
	return nil
}
