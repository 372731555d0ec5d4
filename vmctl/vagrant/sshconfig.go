// Package vagrant reads what labctl needs from Vagrant: the SSH endpoint of
// a machine (`vagrant ssh-config`), turned into an sshx target.
package vagrant

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/labctl/labctl/vmctl/sshx"
)

// SSHConfig is one Host block of `vagrant ssh-config`.
type SSHConfig struct {
	Host          string
	HostName      string
	User          string
	Port          int
	IdentityFiles []string
	// Options holds every option of the block by lower-cased keyword, in
	// order (ssh_config keywords are case-insensitive).
	Options map[string][]string
	// Provider is set from --machine-readable's metadata line ("virtualbox").
	Provider string
}

// machineReadableRE matches a --machine-readable line: timestamp,target,type,data.
var machineReadableRE = regexp.MustCompile(`^\d+,[^,]*,[^,]+,`)

// ParseSSHConfig parses `vagrant ssh-config` output, plain or
// --machine-readable, with one or more Host blocks.
func ParseSSHConfig(out string) ([]SSHConfig, error) {
	out = strings.ReplaceAll(out, "\r\n", "\n")
	if first := firstNonEmpty(out); machineReadableRE.MatchString(first) {
		return parseMachineReadable(out)
	}
	return parsePlain(out)
}

func firstNonEmpty(s string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.TrimSpace(l) != "" {
			return strings.TrimSpace(l)
		}
	}
	return ""
}

// parseMachineReadable decodes the CSV-like lines; the ssh-config data is
// the plain format with Vagrant's escapes (\n, \r, %!(VAGRANT_COMMA)).
func parseMachineReadable(out string) ([]SSHConfig, error) {
	var cfgs []SSHConfig
	provider := map[string]string{}
	for i, line := range strings.Split(out, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		parts := strings.SplitN(line, ",", 4)
		if len(parts) < 4 {
			return nil, fmt.Errorf("vagrant ssh-config --machine-readable line %d: %d fields, want 4", i+1, len(parts))
		}
		target, typ, data := parts[1], parts[2], parts[3]
		switch typ {
		case "metadata":
			if k, v, ok := strings.Cut(data, ","); ok && k == "provider" {
				provider[target] = unescapeMachineReadable(v)
			}
		case "ssh-config":
			blocks, err := parsePlain(unescapeMachineReadable(data))
			if err != nil {
				return nil, fmt.Errorf("vagrant ssh-config --machine-readable line %d (target %q): %w", i+1, target, err)
			}
			cfgs = append(cfgs, blocks...)
		case "error-exit":
			return nil, fmt.Errorf("vagrant ssh-config failed for target %q: %s", target, unescapeMachineReadable(data))
		}
	}
	for i := range cfgs {
		cfgs[i].Provider = provider[cfgs[i].Host]
	}
	if len(cfgs) == 0 {
		return nil, errors.New("vagrant ssh-config --machine-readable: no ssh-config line")
	}
	return cfgs, nil
}

func unescapeMachineReadable(s string) string {
	return strings.NewReplacer(`\n`, "\n", `\r`, "\r", "%!(VAGRANT_COMMA)", ",").Replace(s)
}

// parsePlain parses ssh_config text. Indentation does not matter; a Host
// line starts a block.
func parsePlain(out string) ([]SSHConfig, error) {
	var cfgs []SSHConfig
	var cur *SSHConfig
	for i, raw := range strings.Split(out, "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, val := splitOption(line)
		lk := strings.ToLower(key)
		if lk == "host" {
			if val == "" {
				return nil, fmt.Errorf("vagrant ssh-config line %d: Host without a name", i+1)
			}
			cfgs = append(cfgs, SSHConfig{Host: val, Options: map[string][]string{}})
			cur = &cfgs[len(cfgs)-1]
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("vagrant ssh-config line %d: %q before any Host line", i+1, line)
		}
		cur.Options[lk] = append(cur.Options[lk], val)
		switch lk {
		case "hostname":
			cur.HostName = val
		case "user":
			cur.User = val
		case "port":
			p, err := strconv.Atoi(val)
			if err != nil || p < 1 || p > 65535 {
				return nil, fmt.Errorf("vagrant ssh-config host %q line %d: bad Port %q", cur.Host, i+1, val)
			}
			cur.Port = p
		case "identityfile":
			// Vagrant 0.9 printed "IdentityFile " with no value when it had
			// no key; an empty path is no identity, not the current directory.
			if val != "" {
				cur.IdentityFiles = append(cur.IdentityFiles, val)
			}
		}
	}
	if len(cfgs) == 0 {
		return nil, errors.New("vagrant ssh-config: no Host block")
	}
	return cfgs, nil
}

// splitOption splits "Key value", "Key=value" or "Key = value" and removes
// surrounding double quotes from the value (Vagrant quotes paths with spaces).
func splitOption(line string) (key, val string) {
	i := strings.IndexAny(line, " \t=")
	if i < 0 {
		return line, ""
	}
	key = line[:i]
	val = strings.TrimSpace(line[i:])
	val = strings.TrimSpace(strings.TrimPrefix(val, "="))
	if len(val) >= 2 && val[0] == '"' && val[len(val)-1] == '"' {
		val = val[1 : len(val)-1]
	}
	return key, val
}

// Find returns the block for host, or the only block when host is "".
func Find(cfgs []SSHConfig, host string) (SSHConfig, error) {
	if host == "" {
		if len(cfgs) == 1 {
			return cfgs[0], nil
		}
		names := make([]string, len(cfgs))
		for i, c := range cfgs {
			names[i] = c.Host
		}
		return SSHConfig{}, fmt.Errorf("vagrant ssh-config has %d machines (%s): name one", len(cfgs), strings.Join(names, ", "))
	}
	for _, c := range cfgs {
		if c.Host == host {
			return c, nil
		}
	}
	return SSHConfig{}, fmt.Errorf("vagrant ssh-config has no machine %q", host)
}

// Target is the sshx target URL, ssh://USER@HOST:PORT.
func (c SSHConfig) Target() (string, error) {
	if c.HostName == "" || c.User == "" {
		return "", fmt.Errorf("vagrant machine %q: ssh-config lacks HostName or User", c.Host)
	}
	port := c.Port
	if port == 0 {
		port = 22
	}
	u := url.URL{Scheme: "ssh", User: url.User(c.User), Host: net.JoinHostPort(c.HostName, strconv.Itoa(port))}
	return u.String(), nil
}

// SSHX turns the block into an sshx.Config. Vagrant's own
// "StrictHostKeyChecking no" / "UserKnownHostsFile /dev/null" are NOT
// carried over: labctl verifies host keys against knownHosts (its own file
// in the lab state directory), so the first contact needs acceptNew.
func (c SSHConfig) SSHX(knownHosts string, acceptNew bool, log *slog.Logger) (sshx.Config, error) {
	target, err := c.Target()
	if err != nil {
		return sshx.Config{}, err
	}
	if len(c.IdentityFiles) == 0 {
		return sshx.Config{}, fmt.Errorf("vagrant machine %q: ssh-config has no IdentityFile", c.Host)
	}
	return sshx.Config{
		Target:           target,
		IdentityFiles:    c.IdentityFiles,
		KnownHostsFile:   knownHosts,
		AcceptNewHostKey: acceptNew,
		Logger:           log,
	}, nil
}

// Runner runs a command in dir and returns its stdout.
type Runner interface {
	Run(ctx context.Context, dir, name string, args ...string) ([]byte, error)
}

// ExecRunner runs commands with os/exec.
type ExecRunner struct{}

// Run runs name in dir; a failure carries the command's stderr.
func (ExecRunner) Run(ctx context.Context, dir, name string, args ...string) ([]byte, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.Bytes(), fmt.Errorf("%s %s in %s: %w: %s", name, strings.Join(args, " "), dir, err, strings.TrimSpace(errb.String()))
	}
	return out.Bytes(), nil
}

// ReadSSHConfig runs `vagrant ssh-config [machine]` in the Vagrant project
// dir and returns the machine's block.
func ReadSSHConfig(ctx context.Context, run Runner, dir, machine string) (SSHConfig, error) {
	args := []string{"ssh-config"}
	if machine != "" {
		args = append(args, machine)
	}
	out, err := run.Run(ctx, dir, "vagrant", args...)
	if err != nil {
		return SSHConfig{}, fmt.Errorf("read vagrant ssh-config: %w", err)
	}
	cfgs, err := ParseSSHConfig(string(out))
	if err != nil {
		return SSHConfig{}, fmt.Errorf("vagrant project %s: %w", dir, err)
	}
	return Find(cfgs, machine)
}
