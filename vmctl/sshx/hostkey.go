package sshx

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// ErrUnknownHost: the host is not in known_hosts and AcceptNewHostKey is off.
var ErrUnknownHost = errors.New("ssh host key unknown")

// ErrHostKeyChanged: known_hosts has a different key for the host.
var ErrHostKeyChanged = errors.New("ssh host key changed")

// ErrHostKeyRevoked: the key is marked @revoked in known_hosts.
var ErrHostKeyRevoked = errors.New("ssh host key revoked")

// UnknownHostError is a refused first contact.
type UnknownHostError struct {
	Host        string // as in known_hosts: "[127.0.0.1]:2222" or "host"
	KnownHosts  string
	KeyType     string
	Fingerprint string // SHA256:...
}

func (e *UnknownHostError) Error() string {
	return fmt.Sprintf("ssh: host %s is not in %s; it offers %s key %s. Refusing the first contact: "+
		"verify that fingerprint, then retry with --accept-new-host-key to record it",
		e.Host, e.KnownHosts, e.KeyType, e.Fingerprint)
}

// Is makes errors.Is(err, ErrUnknownHost) work.
func (e *UnknownHostError) Is(target error) bool { return target == ErrUnknownHost }

// KnownKeyInfo is one known_hosts entry a host matched.
type KnownKeyInfo struct {
	File        string
	Line        int
	KeyType     string
	Fingerprint string
}

func (k KnownKeyInfo) String() string {
	return fmt.Sprintf("%s:%d has %s %s", k.File, k.Line, k.KeyType, k.Fingerprint)
}

// HostKeyChangedError is a host whose key differs from every known key.
type HostKeyChangedError struct {
	Host        string
	KnownHosts  string
	KeyType     string // what the server offered
	Fingerprint string
	Known       []KnownKeyInfo
}

func (e *HostKeyChangedError) Error() string {
	known := make([]string, len(e.Known))
	for i, k := range e.Known {
		known[i] = k.String()
	}
	return fmt.Sprintf("ssh: HOST KEY CHANGED for %s: the server offers %s %s but %s. "+
		"Refusing to connect; nothing was run. Someone may be intercepting the connection, "+
		"or the machine was rebuilt (vagrant destroy/up): if you know it was, remove the old key with: ssh-keygen -R '%s' -f %s",
		e.Host, e.KeyType, e.Fingerprint, strings.Join(known, "; "), e.Host, e.KnownHosts)
}

// Is makes errors.Is(err, ErrHostKeyChanged) work.
func (e *HostKeyChangedError) Is(target error) bool { return target == ErrHostKeyChanged }

// HostKeyRevokedError is a host presenting a key marked @revoked.
type HostKeyRevokedError struct {
	Host        string
	File        string
	Line        int
	Fingerprint string
}

func (e *HostKeyRevokedError) Error() string {
	return fmt.Sprintf("ssh: host %s offers key %s, revoked at %s:%d; refusing to connect", e.Host, e.Fingerprint, e.File, e.Line)
}

// Is makes errors.Is(err, ErrHostKeyRevoked) work.
func (e *HostKeyRevokedError) Is(target error) bool { return target == ErrHostKeyRevoked }

// hostKeys verifies one connection's host key against a known_hosts file.
type hostKeys struct {
	path      string
	acceptNew bool
	known     ssh.HostKeyCallback // nil when the file does not exist yet
	// accepted is the key of a first contact allowed by acceptNew; it is
	// written to known_hosts only after the handshake succeeded.
	accepted ssh.PublicKey
	// refused keeps the typed error the callback returned, so the caller
	// gets it even if the ssh package rewraps it.
	refused error
}

func newHostKeys(path string, acceptNew bool) (*hostKeys, error) {
	hk := &hostKeys{path: path, acceptNew: acceptNew}
	cb, err := knownhosts.New(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("read known_hosts %s: %w", path, err)
	default:
		hk.known = cb
	}
	return hk, nil
}

// algorithms returns the host key algorithms of the keys known_hosts has
// for this host, so the server is asked for a key we can check. Without
// it a server with several host keys may negotiate a type we have no entry
// for, which knownhosts reports as a mismatch.
func (hk *hostKeys) algorithms(hostport string, remote net.Addr) []string {
	if hk.known == nil {
		return nil
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil
	}
	probe, err := ssh.NewPublicKey(pub)
	if err != nil {
		return nil
	}
	var ke *knownhosts.KeyError
	if !errors.As(hk.known(hostport, remote, probe), &ke) {
		return nil
	}
	var algos []string
	seen := map[string]bool{}
	for _, k := range ke.Want {
		for _, a := range algorithmsForKeyType(k.Key.Type()) {
			if !seen[a] {
				seen[a] = true
				algos = append(algos, a)
			}
		}
	}
	return algos
}

func algorithmsForKeyType(t string) []string {
	if t == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{t}
}

// callback is the ssh.HostKeyCallback for one connection.
func (hk *hostKeys) callback(hostport string, remote net.Addr, key ssh.PublicKey) error {
	host := knownhosts.Normalize(hostport)
	fp := ssh.FingerprintSHA256(key)
	err := error(&knownhosts.KeyError{})
	if hk.known != nil {
		err = hk.known(hostport, remote, key)
	}
	if err == nil {
		return nil
	}
	var ke *knownhosts.KeyError
	var re *knownhosts.RevokedError
	switch {
	case errors.As(err, &re):
		hk.refused = &HostKeyRevokedError{Host: host, File: re.Revoked.Filename, Line: re.Revoked.Line, Fingerprint: fp}
	case errors.As(err, &ke) && len(ke.Want) > 0:
		ch := &HostKeyChangedError{Host: host, KnownHosts: hk.path, KeyType: key.Type(), Fingerprint: fp}
		for _, w := range ke.Want {
			ch.Known = append(ch.Known, KnownKeyInfo{File: w.Filename, Line: w.Line, KeyType: w.Key.Type(), Fingerprint: ssh.FingerprintSHA256(w.Key)})
		}
		hk.refused = ch
	case errors.As(err, &ke):
		if hk.acceptNew {
			hk.accepted = key
			return nil
		}
		hk.refused = &UnknownHostError{Host: host, KnownHosts: hk.path, KeyType: key.Type(), Fingerprint: fp}
	default:
		hk.refused = fmt.Errorf("check host key of %s against %s: %w", host, hk.path, err)
	}
	return hk.refused
}

// record appends the accepted key to known_hosts, creating the directory
// 0700 and the file 0600.
func (hk *hostKeys) record(hostport string) error {
	if hk.accepted == nil {
		return nil
	}
	return appendKnownHost(hk.path, hostport, hk.accepted)
}

func appendKnownHost(path, hostport string, key ssh.PublicKey) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create directory of known_hosts %s: %w", path, err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open known_hosts %s: %w", path, err)
	}
	defer f.Close()
	if err := f.Chmod(0o600); err != nil {
		return fmt.Errorf("chmod known_hosts %s: %w", path, err)
	}
	line := knownhosts.Line([]string{knownhosts.Normalize(hostport)}, key) + "\n"
	// Do not glue our line onto a last line that lacks its newline.
	if st, err := f.Stat(); err == nil && st.Size() > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, st.Size()-1); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read known_hosts %s: %w", path, err)
		}
		if last[0] != '\n' {
			line = "\n" + line
		}
	}
	if _, err := f.WriteString(line); err != nil {
		return fmt.Errorf("append to known_hosts %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("close known_hosts %s: %w", path, err)
	}
	return nil
}
