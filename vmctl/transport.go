// Package vmctl holds machines and guests: how labctl reaches dom0
// (Transport), the simulated lab's namespaces, and guest runtimes.
package vmctl

import (
	"context"
	"io"
	"os"
	"strconv"
	"strings"
)

// Transport runs commands on dom0. Implementations: local (this machine),
// netns (a namespace of the simulated lab), ssh (a real dom0).
type Transport interface {
	// Run runs argv on the target. stdin may be nil. It returns an error
	// wrapping *ExitError when the command ran and exited non-zero.
	Run(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) error
	// Put copies the local file to path on the target with mode.
	Put(ctx context.Context, local, path string, mode os.FileMode) error
	// String names the target for messages ("local", "netns lab-dom0", "ssh root@host:22").
	String() string
	Close() error
}

// ExitError is a command that ran on a target and exited non-zero.
type ExitError struct {
	Argv   []string
	Code   int
	Stderr string
}

func (e *ExitError) Error() string {
	msg := ""
	if e.Stderr != "" {
		msg = ": " + e.Stderr
	}
	return "command " + strings.Join(e.Argv, " ") + " exited with status " + strconv.Itoa(e.Code) + msg
}
