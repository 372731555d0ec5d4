package sshx

import (
	"errors"
	"strings"
)

// QuoteCommand joins argv into one command line for a POSIX shell (sh,
// dash, bash, zsh as login shells): every word not plainly safe bare goes
// in single quotes. "=" is not safe bare: a leading "x=y" is an assignment
// and zsh expands a leading "=". NUL cannot travel in a command line at all.
func QuoteCommand(argv []string) (string, error) {
	if len(argv) == 0 {
		return "", errors.New("empty command")
	}
	words := make([]string, len(argv))
	for i, a := range argv {
		if strings.IndexByte(a, 0) >= 0 {
			return "", errors.New("argument contains a NUL byte")
		}
		words[i] = QuoteWord(a)
	}
	return strings.Join(words, " "), nil
}

// QuoteWord quotes one word: bare when made only of characters no POSIX
// shell treats specially, else in single quotes, an embedded quote being
// closed, backslash-escaped and reopened.
func QuoteWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:@%+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
