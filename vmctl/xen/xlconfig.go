package xen

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/labctl/labctl/vmctl"
)

// DefaultMemoryMB is the guest memory when GuestSpec.Memory is 0: the auth
// unikernel runs in far less than mirage's generated 256.
const DefaultMemoryMB = 32

// xenOUI is the MAC prefix the lab contract gives every guest.
var xenOUI = []byte{0x00, 0x16, 0x3e}

var (
	guestName  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`) })
	bridgeName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,14}$`) })
	xlKey      = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`) })
)

// XLFile is the path labctl renders a guest's xl config to.
func XLFile(g vmctl.GuestSpec) string { return filepath.Join(g.StateDir, g.Name+".xl") }

// RenderXL renders the xl domain config for g. labctl writes the file
// itself rather than fixing mirage's: that one has relative paths, 256 MiB,
// no vif bridge/MAC and no boot arguments.
func RenderXL(g vmctl.GuestSpec) ([]byte, error) {
	if !guestName().MatchString(g.Name) {
		return nil, fmt.Errorf("xl config: Name: expected 1-64 of [A-Za-z0-9._-] starting with a letter or digit, got %q", g.Name)
	}
	if err := checkAbs("Kernel", g.Kernel); err != nil {
		return nil, fmt.Errorf("xl config for %q: %w", g.Name, err)
	}
	if err := checkAbs("Image", g.Image); err != nil {
		return nil, fmt.Errorf("xl config for %q: %w", g.Name, err)
	}
	if !bridgeName().MatchString(g.Bridge) {
		return nil, fmt.Errorf("xl config for %q: Bridge: expected an interface name of 1-15 [A-Za-z0-9._-], got %q", g.Name, g.Bridge)
	}
	if len(g.MAC) != 6 || !bytes.Equal(g.MAC[:3], xenOUI) {
		return nil, fmt.Errorf("xl config for %q: MAC: expected 6 bytes starting 00:16:3e (Xen's OUI), got %q", g.Name, g.MAC.String())
	}
	mem := g.Memory
	if mem == 0 {
		mem = DefaultMemoryMB
	}
	if mem < 0 {
		return nil, fmt.Errorf("xl config for %q: Memory: expected MiB > 0 (0 means %d), got %d", g.Name, DefaultMemoryMB, mem)
	}
	if err := checkText("Extra", g.Extra); err != nil {
		return nil, fmt.Errorf("xl config for %q: %w", g.Name, err)
	}

	var b strings.Builder
	fmt.Fprintf(&b, "# Rendered by labctl for guest %s: rewritten on every deploy, edits are lost.\n", g.Name)
	fmt.Fprintf(&b, "name = %s\n", quote(g.Name))
	b.WriteString("type = 'pvh'\n")
	fmt.Fprintf(&b, "kernel = %s\n", quote(g.Kernel))
	fmt.Fprintf(&b, "memory = %d\n", mem)
	b.WriteString("on_crash = 'preserve'\n")
	fmt.Fprintf(&b, "vif = [%s]\n", quote("bridge="+g.Bridge+",mac="+g.MAC.String()))
	fmt.Fprintf(&b, "disk = [%s]\n", quote("format=raw, vdev=xvdb, access=ro, target="+g.Image))
	if g.Extra != "" {
		fmt.Fprintf(&b, "extra = %s\n", quote(g.Extra))
	}
	return []byte(b.String()), nil
}

// quote single-quotes a value already checked free of quotes, backslashes
// and control characters, the only things xl's lexer would take specially.
func quote(s string) string { return "'" + s + "'" }

func checkText(field, s string) error {
	for _, r := range s {
		switch {
		case r == '\'' || r == '"' || r == '\\':
			return fmt.Errorf("%s: quotes and backslashes cannot be written to an xl config, got %q", field, s)
		case r < 0x20 || r == 0x7f:
			return fmt.Errorf("%s: newlines and control characters cannot be written to an xl config, got %q", field, s)
		}
	}
	return nil
}

// checkAbs accepts a clean absolute path that is safe inside a quoted xl
// value and inside a comma-separated disk spec.
func checkAbs(field, p string) error {
	if p == "" {
		return fmt.Errorf("%s: expected an absolute path, got none", field)
	}
	if !filepath.IsAbs(p) {
		return fmt.Errorf("%s: expected an absolute path (xl resolves relative ones against its own working directory), got %q", field, p)
	}
	if filepath.Clean(p) != p {
		return fmt.Errorf("%s: expected a clean path (no //, /./, /../ or trailing /), got %q", field, p)
	}
	if err := checkText(field, p); err != nil {
		return err
	}
	if strings.ContainsAny(p, ", \t") {
		return fmt.Errorf("%s: commas and spaces would split the xl disk/vif spec, got %q", field, p)
	}
	return nil
}

// XLValue is one value of an xl config: a string, a number or a list of strings.
type XLValue struct {
	Str    string
	Num    int64
	List   []string
	IsNum  bool
	IsList bool
}

// ParseXL reads the subset of xl's config syntax labctl and mirage write:
// `key = 'str' | "str" | number | [ 'a', "b" ]`, '#' comments, one setting
// per line. Tests read rendered files back with it, and the fake xl uses it.
func ParseXL(data []byte) (map[string]XLValue, error) {
	out := map[string]XLValue{}
	for i, raw := range strings.Split(string(data), "\n") {
		line := strings.TrimSpace(raw)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || !xlKey().MatchString(k) {
			return nil, fmt.Errorf("xl config: line %d: expected key = value, got %q", i+1, raw)
		}
		if _, dup := out[k]; dup {
			return nil, fmt.Errorf("xl config: line %d: expected each key once, %q is set again", i+1, k)
		}
		val, err := parseXLValue(v)
		if err != nil {
			return nil, fmt.Errorf("xl config: line %d: %s: %w", i+1, k, err)
		}
		out[k] = val
	}
	return out, nil
}

func parseXLValue(v string) (XLValue, error) {
	if strings.HasPrefix(v, "[") {
		if !strings.HasSuffix(v, "]") {
			return XLValue{}, fmt.Errorf("expected a list closed by ']', got %q", v)
		}
		inner := strings.TrimSpace(v[1 : len(v)-1])
		list := []string{}
		for inner != "" {
			s, rest, err := cutQuoted(inner)
			if err != nil {
				return XLValue{}, err
			}
			list = append(list, s)
			rest = strings.TrimSpace(rest)
			if rest == "" {
				break
			}
			if !strings.HasPrefix(rest, ",") {
				return XLValue{}, fmt.Errorf("expected ',' between list items, got %q", rest)
			}
			inner = strings.TrimSpace(rest[1:])
		}
		return XLValue{List: list, IsList: true}, nil
	}
	if strings.HasPrefix(v, "'") || strings.HasPrefix(v, `"`) {
		s, rest, err := cutQuoted(v)
		if err != nil {
			return XLValue{}, err
		}
		if strings.TrimSpace(rest) != "" {
			return XLValue{}, fmt.Errorf("expected nothing after the closing quote, got %q", rest)
		}
		return XLValue{Str: s}, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return XLValue{}, fmt.Errorf("expected a quoted string, a number or a [list], got %q", v)
	}
	return XLValue{Num: n, IsNum: true}, nil
}

func cutQuoted(s string) (val, rest string, err error) {
	if s == "" || (s[0] != '\'' && s[0] != '"') {
		return "", "", fmt.Errorf("expected a quoted string, got %q", s)
	}
	end := strings.IndexByte(s[1:], s[0])
	if end < 0 {
		return "", "", fmt.Errorf("expected a closing %c in %q", s[0], s)
	}
	return s[1 : 1+end], s[2+end:], nil
}

// SpecValue returns the value of key in a comma-separated xl device spec
// such as "bridge=br0,mac=00:16:3e:00:00:01".
func SpecValue(spec, key string) (string, bool) {
	for _, part := range strings.Split(spec, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}
