package main

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/statedir"
	"github.com/labctl/labctl/vmctl/sshx"
	"github.com/labctl/labctl/vmctl/vagrant"
	"github.com/spf13/cobra"
)

// remoteFlags are the flags of the vagrant and ssh:// targets.
type remoteFlags struct {
	identities  []string
	knownHosts  string
	acceptNew   bool
	agentBinary string
	dom0State   string
	machine     string
	// confirmTimeout: provision's commit-confirm window (0: off).
	confirmTimeout time.Duration
}

func addRemoteFlags(cmd *cobra.Command, r *remoteFlags) {
	f := cmd.Flags()
	f.StringArrayVar(&r.identities, "identity", nil, "ssh:// and vagrant targets: private key to log in with (repeatable; default: ~/.ssh/id_ed25519, id_ecdsa, id_rsa and $SSH_AUTH_SOCK; vagrant: its own key)")
	f.StringVar(&r.knownHosts, "known-hosts", "", "known_hosts file dom0's host key is checked against (default: ~/.ssh/known_hosts for ssh://, <state-dir>/<lab>/vagrant/known_hosts for vagrant)")
	f.BoolVar(&r.acceptNew, "accept-new-host-key", false, "on first contact, record dom0's host key instead of refusing (a changed key is always refused)")
	f.StringVar(&r.agentBinary, "agent-binary", os.Getenv("LABCTL_AGENT_BINARY"), "linux/amd64 labctl to run on dom0 (default: this labctl when it is linux/amd64) ($LABCTL_AGENT_BINARY)")
	f.StringVar(&r.dom0State, "dom0-state-dir", envOr("LABCTL_DOM0_STATE_DIR", statedir.DefaultRoot), "state root on dom0 for remote targets; --state-dir stays this machine's ($LABCTL_DOM0_STATE_DIR)")
	f.StringVar(&r.machine, "vagrant-machine", "", "vagrant target: the machine's name when the Vagrantfile defines several")
}

// openRemote connects to a vagrant or ssh:// target and makes sure
// dom0 runs this labctl.
func (a remoteOps) openRemote(ctx context.Context, spec provision.Spec, ts targetSpec) (*dom0Conn, error) {
	root := a.remote.dom0State
	if err := checkRemotePath(root); err != nil {
		return nil, &exitError{exitUsage, fmt.Errorf("--dom0-state-dir: %w", err)}
	}
	local, err := a.agentBinary()
	if err != nil {
		return nil, &exitError{exitUsage, err}
	}
	cfg, err := a.sshConfig(ctx, spec, ts)
	if err != nil {
		return nil, err
	}
	tr, err := sshx.New(cfg)
	if err != nil {
		return nil, &exitError{exitUsage, err}
	}
	// Connect first: a refused host key stops everything before any
	// command runs on dom0.
	if err := tr.Connect(ctx); err != nil {
		tr.Close()
		return nil, &exitError{exitFail, err}
	}
	c := &dom0Conn{t: tr, ssh: tr, stateRoot: root, log: a.log}
	exe, err := c.installAgent(ctx, local, spec.Lab)
	if err != nil {
		tr.Close()
		return nil, &exitError{exitFail, err}
	}
	c.exe = exe
	return c, nil
}

// sshConfig builds the SSH client configuration of a remote target.
func (a remoteOps) sshConfig(ctx context.Context, spec provision.Spec, ts targetSpec) (sshx.Config, error) {
	r := a.remote
	var cfg sshx.Config
	switch ts.kind {
	case targetVagrant:
		vc, err := vagrant.ReadSSHConfig(ctx, vagrant.ExecRunner{}, ts.dir, r.machine)
		if err != nil {
			return cfg, &exitError{exitFail, fmt.Errorf("--target %s: %w (is the VM up? vagrant up)", a.target, err)}
		}
		kh := r.knownHosts
		if kh == "" {
			// labctl's own file: Vagrant's ssh-config says
			// UserKnownHostsFile /dev/null, which labctl never follows.
			kh = filepath.Join(provision.StateDir(a.stateRoot, spec.Lab), "vagrant", "known_hosts")
		}
		cfg, err = vc.SSHX(kh, r.acceptNew, a.log)
		if err != nil {
			return cfg, &exitError{exitFail, fmt.Errorf("--target %s: %w", a.target, err)}
		}
		if len(r.identities) > 0 {
			cfg.IdentityFiles = r.identities
		}
	case targetSSH:
		cfg = sshx.Config{Target: ts.url, IdentityFiles: r.identities, KnownHostsFile: r.knownHosts,
			AcceptNewHostKey: r.acceptNew, Logger: a.log}
		home, _ := os.UserHomeDir()
		if cfg.KnownHostsFile == "" {
			if home == "" {
				return cfg, &exitError{exitUsage, errors.New("--known-hosts: no home directory for ~/.ssh/known_hosts; name the file")}
			}
			cfg.KnownHostsFile = filepath.Join(home, ".ssh", "known_hosts")
		}
		if sock := os.Getenv("SSH_AUTH_SOCK"); sock != "" {
			cfg.AgentSocket = sock
		}
		if len(cfg.IdentityFiles) == 0 && home != "" {
			// What ssh itself would offer.
			for _, k := range []string{"id_ed25519", "id_ecdsa", "id_rsa"} {
				if p := filepath.Join(home, ".ssh", k); fileExists(p) {
					cfg.IdentityFiles = append(cfg.IdentityFiles, p)
				}
			}
		}
		if len(cfg.IdentityFiles) == 0 && cfg.AgentSocket == "" {
			return cfg, &exitError{exitUsage, fmt.Errorf("--target %s: no key to log in with: pass --identity FILE (or run ssh-agent)", ts.url)}
		}
	}
	user, _, err := sshx.ParseTarget(cfg.Target)
	if err != nil {
		return cfg, &exitError{exitFail, err}
	}
	// root needs no sudo (and a minimal dom0 may not have it); anyone
	// else runs the agent through sudo -n, which must not ask a password.
	cfg.Sudo = user != "root"
	if r.confirmTimeout > 0 {
		// Under commit-confirm a connection the run cut must be noticed
		// well within the confirmation window, not after a minute.
		cfg.KeepAliveInterval = min(max(r.confirmTimeout/10, 500*time.Millisecond), 15*time.Second)
		cfg.KeepAliveMax = 3
	}
	return cfg, nil
}

// agentBinary is the local linux/amd64 labctl to put on dom0.
func (a remoteOps) agentBinary() (string, error) {
	p := a.remote.agentBinary
	if p == "" {
		if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
			return "", fmt.Errorf("this labctl is %s/%s but dom0 needs linux/amd64: build one (CGO_ENABLED=0 GOOS=linux GOARCH=amd64 go build -o labctl-linux-amd64 ./cmd/labctl) and pass --agent-binary labctl-linux-amd64",
				runtime.GOOS, runtime.GOARCH)
		}
		exe, err := os.Executable()
		if err != nil {
			return "", fmt.Errorf("finding this labctl: %w", err)
		}
		return exe, nil
	}
	if err := checkLinuxAMD64(p); err != nil {
		return "", fmt.Errorf("--agent-binary: %w", err)
	}
	return p, nil
}

// checkLinuxAMD64 checks that path is an x86-64 ELF executable, so a
// wrong --agent-binary fails here and not as "exec format error" on dom0.
func checkLinuxAMD64(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%s is not a linux/amd64 executable: %w", path, err)
	}
	defer f.Close()
	if f.Class != elf.ELFCLASS64 || f.Machine != elf.EM_X86_64 || f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%s is a %s %s %s, not a linux/amd64 executable", path, f.Class, f.Machine, f.Type)
	}
	return nil
}

// checkRemotePath accepts an absolute, clean path for dom0.
func checkRemotePath(p string) error {
	if !path.IsAbs(p) || path.Clean(p) != p || p == "/" || strings.ContainsAny(p, "\x00\n") {
		return fmt.Errorf("%q: expected an absolute, clean directory like /var/lib/labctl", p)
	}
	return nil
}

// installAgent puts the local labctl at <root>/bin/labctl on dom0 unless
// dom0's copy has the same checksum, and returns its path there.
func (c *dom0Conn) installAgent(ctx context.Context, local, lab string) (string, error) {
	var out bytes.Buffer
	layout := statedir.Layout{Root: c.stateRoot, Lab: lab}
	if err := c.t.Run(ctx, layout.Prepare(), nil, &out, nil); err != nil {
		return "", fmt.Errorf("preparing %s on dom0 (%s): %w", c.stateRoot, c.t, err)
	}
	if arch := strings.TrimSpace(out.String()); arch != "x86_64" {
		return "", fmt.Errorf("dom0 (%s) is %q, but labctl's agent is linux/amd64 (x86_64)", c.t, arch)
	}
	exe := layout.Agent()
	uploaded, err := sshx.PutIfChanged(ctx, c.t, local, exe, 0o755)
	if err != nil {
		return "", fmt.Errorf("putting labctl on dom0: %w", err)
	}
	if uploaded {
		c.log.Info("uploaded labctl to dom0", "target", c.t.String(), "path", exe)
	} else {
		c.log.Debug("dom0's labctl is current", "target", c.t.String(), "path", exe)
	}
	return exe, nil
}

// placeImage makes the users image deploy hands the agent a path on dom0:
// for remote targets it is uploaded (when it differs) to
// <root>/<lab>/images/users.img, 0600 in a 0700 directory. The sim and
// local targets share this machine's files.
func (c *dom0Conn) placeImage(ctx context.Context, spec provision.Spec, in *provision.DeployInput, plan bool) error {
	if c.ssh == nil || in.Image == "" {
		return nil
	}
	dst := provision.UsersImagePath(c.stateRoot, spec.Lab) // dom0 is Linux: its paths are ours
	if !plan {
		uploaded, err := sshx.PutIfChanged(ctx, c.t, in.Image, dst, 0o600)
		if err != nil {
			return fmt.Errorf("putting the users image on dom0: %w", err)
		}
		if uploaded {
			c.log.Info("uploaded the users image to dom0", "path", dst)
		}
	}
	in.Image = dst
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
