package users

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
)

// Credential format: pbkdf2-sha256$<iterations>$<salt>$<key>, salt and key
// in standard base64 with padding (RFC 4648 §4). It is the whole content of
// a user's file and of its image entry; the writer adds no newline, the
// parser accepts one trailing "\n" because editors add it.
const Scheme = "pbkdf2-sha256"

// Iteration bounds. DefaultIterations follows OWASP's PBKDF2-SHA256 advice
// (about 90 ms on a modern core); the maximum keeps a hostile image from
// turning every request into seconds of CPU; the minimum lets test
// fixtures stay fast without admitting trivially weak hashes.
const (
	DefaultIterations = 600_000
	MinIterations     = 1_000
	MaxIterations     = 10_000_000
)

// Salt and derived-key sizes: the writer uses 16 and 32 bytes; the parser
// accepts the ranges so other tools' strings still verify.
const (
	SaltLen   = 16
	KeyLen    = 32
	minSalt   = 8
	maxSalt   = 64
	minKey    = 16
	maxKey    = 64
	maxCredOf = len(Scheme) + 1 + 8 + 1 + 88 + 1 + 88 + 1 // longest valid string (+ newline)
)

// Credential is a parsed PBKDF2-SHA256 credential.
type Credential struct {
	Iterations int
	Salt       []byte
	Key        []byte
}

var b64 = base64.StdEncoding.Strict()

// Hash derives a new credential for password with a random salt.
func Hash(password string, iterations int) (Credential, error) {
	if err := checkIterations(iterations); err != nil {
		return Credential{}, err
	}
	salt := make([]byte, SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return Credential{}, fmt.Errorf("salt: %w", err)
	}
	return HashWithSalt(password, salt, iterations)
}

// HashWithSalt derives a credential with the given salt (deterministic: for
// fixtures and the handler's dummy credential).
func HashWithSalt(password string, salt []byte, iterations int) (Credential, error) {
	if err := checkIterations(iterations); err != nil {
		return Credential{}, err
	}
	if len(salt) < minSalt || len(salt) > maxSalt {
		return Credential{}, &FieldError{Field: "salt", Reason: fmt.Sprintf("length %d not in [%d,%d]", len(salt), minSalt, maxSalt)}
	}
	key, err := pbkdf2.Key(sha256.New, password, salt, iterations, KeyLen)
	if err != nil {
		return Credential{}, fmt.Errorf("pbkdf2: %w", err)
	}
	return Credential{Iterations: iterations, Salt: append([]byte(nil), salt...), Key: key}, nil
}

func checkIterations(n int) error {
	if n < MinIterations || n > MaxIterations {
		return &FieldError{Field: "iterations", Value: strconv.Itoa(n), Reason: fmt.Sprintf("not in [%d,%d]", MinIterations, MaxIterations)}
	}
	return nil
}

// String encodes c in the credential format, without a newline.
func (c Credential) String() string {
	return Scheme + "$" + strconv.Itoa(c.Iterations) + "$" + b64.EncodeToString(c.Salt) + "$" + b64.EncodeToString(c.Key)
}

// ParseCredential parses the credential format strictly: the scheme, a
// decimal iteration count without sign or leading zero inside the bounds,
// canonical padded base64, and at most one trailing "\n".
func ParseCredential(s string) (Credential, error) {
	bad := func(reason string) error { return &FieldError{Field: "credential", Reason: reason} }
	if len(s) > maxCredOf {
		return Credential{}, bad(fmt.Sprintf("longer than %d bytes", maxCredOf))
	}
	s = strings.TrimSuffix(s, "\n")
	// Even Strict base64 skips '\r' and '\n'; they have no place here.
	if strings.ContainsAny(s, "\r\n") {
		return Credential{}, bad("line break inside the credential")
	}
	parts := strings.Split(s, "$")
	if len(parts) != 4 {
		return Credential{}, bad("want pbkdf2-sha256$<iterations>$<salt>$<key>")
	}
	if parts[0] != Scheme {
		return Credential{}, bad(fmt.Sprintf("scheme %q, want %q", parts[0], Scheme))
	}
	it := parts[1]
	if it == "" || len(it) > 8 || it[0] == '0' || strings.TrimLeft(it, "0123456789") != "" {
		return Credential{}, bad(fmt.Sprintf("iterations %q is not a positive decimal", it))
	}
	n, _ := strconv.Atoi(it) // cannot fail: at most 8 digits
	if err := checkIterations(n); err != nil {
		return Credential{}, err
	}
	salt, err := b64.DecodeString(parts[2])
	if err != nil {
		return Credential{}, bad(fmt.Sprintf("salt: %v", err))
	}
	if len(salt) < minSalt || len(salt) > maxSalt {
		return Credential{}, bad(fmt.Sprintf("salt length %d not in [%d,%d]", len(salt), minSalt, maxSalt))
	}
	key, err := b64.DecodeString(parts[3])
	if err != nil {
		return Credential{}, bad(fmt.Sprintf("key: %v", err))
	}
	if len(key) < minKey || len(key) > maxKey {
		return Credential{}, bad(fmt.Sprintf("key length %d not in [%d,%d]", len(key), minKey, maxKey))
	}
	// Strict base64 accepts only canonical encodings, so String() round-trips.
	return Credential{Iterations: n, Salt: salt, Key: key}, nil
}

// Verify reports whether password matches c. The key comparison is
// constant-time; the cost is one PBKDF2 run of c.Iterations whatever the
// outcome. Passwords longer than MaxPasswordLen or holding NUL never match
// (but still pay): HMAC zero-pads its key, so "pw" and "pw\x00" would
// otherwise derive the same key.
func (c Credential) Verify(password string) bool {
	if len(c.Key) == 0 || checkIterations(c.Iterations) != nil {
		return false
	}
	got, err := pbkdf2.Key(sha256.New, password, c.Salt, c.Iterations, len(c.Key))
	if err != nil {
		return false
	}
	return subtle.ConstantTimeCompare(got, c.Key) == 1 && CheckPassword(password) == nil
}

// Verify parses stored and checks password against it; a malformed stored
// credential never matches.
func Verify(stored, password string) bool {
	c, err := ParseCredential(stored)
	if err != nil {
		return false
	}
	return c.Verify(password)
}
