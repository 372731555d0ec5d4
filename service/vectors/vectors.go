// Package vectors parses service/testdata/vectors.tsv, the auth service's
// HTTP contract shared with the OCaml unikernel's tests. The format is
// described in service/testdata/README.md.
package vectors

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Vector is one request and its exact expected answer.
type Vector struct {
	Name   string
	Method string
	Target string // raw request-target, macros expanded
	Status int
	Body   string // unescaped
	Line   int
}

// maxRepeat bounds the {C*N} macro.
const maxRepeat = 1 << 20

// ParseFile parses the vectors file at path.
func ParseFile(path string) ([]Vector, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vectors %s: %w", path, err)
	}
	defer f.Close()
	vs, err := Parse(f)
	if err != nil {
		return nil, fmt.Errorf("vectors %s: %w", path, err)
	}
	return vs, nil
}

// Parse reads vectors; errors name the line.
func Parse(r io.Reader) ([]Vector, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	sc.Split(splitLF) // ScanLines would silently drop a '\r'
	var out []Vector
	seen := map[string]int{}
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
		if prev, dup := seen[v.Name]; dup {
			return nil, fmt.Errorf("line %d: name %q already used on line %d", n, v.Name, prev)
		}
		seen[v.Name] = n
		v.Line = n
		out = append(out, v)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", n+1, err)
	}
	return out, nil
}

func splitLF(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

func parseLine(line string) (Vector, error) {
	if i := strings.IndexFunc(line, func(r rune) bool { return r < 0x20 && r != '\t' || r == 0x7f }); i >= 0 {
		return Vector{}, fmt.Errorf("control character %q at byte %d", line[i], i)
	}
	f := strings.Split(line, "\t")
	if len(f) != 5 {
		return Vector{}, fmt.Errorf("%d TAB-separated fields, want 5", len(f))
	}
	v := Vector{Name: f[0], Method: f[1]}
	if v.Name == "" || strings.TrimLeft(v.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
		return Vector{}, fmt.Errorf("name %q: want [A-Za-z0-9._-]+", v.Name)
	}
	if v.Method == "" || strings.ContainsFunc(v.Method, func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		return Vector{}, fmt.Errorf("method %q: want a token", v.Method)
	}
	t, err := expand(f[2])
	if err != nil {
		return Vector{}, fmt.Errorf("target: %w", err)
	}
	v.Target = t
	if len(f[3]) != 3 {
		return Vector{}, fmt.Errorf("status %q: want three digits", f[3])
	}
	v.Status, err = strconv.Atoi(f[3])
	if err != nil || v.Status < 100 || v.Status > 599 {
		return Vector{}, fmt.Errorf("status %q: want 100..599", f[3])
	}
	v.Body, err = unescape(f[4])
	if err != nil {
		return Vector{}, fmt.Errorf("body: %w", err)
	}
	return v, nil
}

// expand replaces {C*N} macros and checks the result is a plausible
// request-target (printable ASCII, no space).
func expand(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("empty")
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		c := s[i]
		if c != '{' {
			if c < 0x21 || c > 0x7e {
				return "", fmt.Errorf("byte %d (%q) is not printable ASCII", i, c)
			}
			b.WriteByte(c)
			i++
			continue
		}
		end := strings.IndexByte(s[i:], '}')
		if end < 0 || end < 4 || s[i+2] != '*' {
			return "", fmt.Errorf("byte %d: '{' does not start a {C*N} macro", i)
		}
		ch := s[i+1]
		digits := s[i+3 : i+end]
		n, err := strconv.Atoi(digits)
		if err != nil || n < 1 || n > maxRepeat || digits[0] == '0' {
			return "", fmt.Errorf("byte %d: repeat count %q not in 1..%d", i, digits, maxRepeat)
		}
		if ch < 0x21 || ch > 0x7e {
			return "", fmt.Errorf("byte %d: macro character %q is not printable ASCII", i, ch)
		}
		b.WriteString(strings.Repeat(string(ch), n))
		i += end + 1
	}
	return b.String(), nil
}

func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", fmt.Errorf("trailing backslash")
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case '\\':
			b.WriteByte('\\')
		default:
			return "", fmt.Errorf("unknown escape \\%c", s[i])
		}
	}
	return b.String(), nil
}
