package sshx

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/crypto/ssh"
	"golang.org/x/term"
)

// Shell opens the login user's shell on the target over the verified
// connection (`labctl shell dom0`). When stdin is a terminal it asks for a
// pty of the terminal's size and puts the local terminal in raw mode for
// the session (x/crypto/ssh: Session.RequestPty, Session.Shell); otherwise
// the remote shell reads commands from stdin. It returns the shell's exit
// status.
func (t *Transport) Shell(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	return t.Interactive(ctx, nil, stdin, stdout, stderr)
}

// Interactive is Shell running argv (through sudo when configured)
// instead of the login shell: a program that wants a terminal, such as
// `xl console`. Closing the session hangs its pty up. Empty argv: the shell.
func (t *Transport) Interactive(ctx context.Context, argv []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	line := ""
	if len(argv) > 0 {
		var err error
		if line, err = t.wrap(argv); err != nil {
			return 0, fmt.Errorf("%s: %q: %w", t, argv, err)
		}
	}
	c, err := t.conn(ctx)
	if err != nil {
		return 0, err
	}
	sess, err := c.NewSession()
	if err != nil {
		return 0, fmt.Errorf("%s: open shell session: %w", t, err)
	}
	defer sess.Close()
	sess.Stdin, sess.Stdout, sess.Stderr = stdin, stdout, stderr
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		w, h, err := term.GetSize(int(f.Fd()))
		if err != nil {
			w, h = 80, 24
		}
		tn := os.Getenv("TERM")
		if tn == "" {
			tn = "xterm"
		}
		if err := sess.RequestPty(tn, h, w, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
			return 0, fmt.Errorf("%s: pty: %w", t, err)
		}
		old, err := term.MakeRaw(int(f.Fd()))
		if err != nil {
			return 0, fmt.Errorf("raw terminal: %w", err)
		}
		defer term.Restore(int(f.Fd()), old)
	}
	if line == "" {
		err = sess.Shell()
	} else {
		err = sess.Start(line)
	}
	if err != nil {
		return 0, fmt.Errorf("%s: start %s: %w", t, orShell(argv), err)
	}
	err = sess.Wait()
	var ee *ssh.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.ExitStatus(), nil
	}
	return 0, fmt.Errorf("%s: %s: %w", t, orShell(argv), err)
}

func orShell(argv []string) string {
	if len(argv) == 0 {
		return "shell"
	}
	return argv[0]
}
