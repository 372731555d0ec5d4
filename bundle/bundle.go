// Package bundle writes the evidence bundle: one .tar.gz holding what a
// person debugging the lab asks for — the spec, the journal, dnsmasq's
// config, leases and log, each guest's console, every lab namespace's
// addresses, routes, links and iptables rules, status, doctor, the graph
// and the versions of the tools — and nothing secret.
//
// Secrets stay out twice: the bundle reads only the files it names (never
// the users directory, the users image, sshd host keys or client
// identities), and every file's bytes are scanned before they are added:
// a line holding a password hash or a private key is replaced by a note.
package bundle

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/labctl/labctl/vmctl"
)

// Place is somewhere whose network state goes into the bundle: a lab
// namespace (sim) or a machine (dom0 over SSH, the host).
type Place struct {
	Name string          // folder under net/: "gx-dom0", "dom0", "host"
	T    vmctl.Transport // runs ip and iptables-save there
}

// Tool is one version probe.
type Tool struct {
	Where string   // "dom0" or "host"
	Argv  []string // ["dnsmasq", "--version"]
}

// Input is everything the bundle collects.
type Input struct {
	Lab  string
	Spec []byte // the spec as loaded (YAML)
	// StateDir is the lab's state directory on dom0; Dom0 reads its files
	// (cat) and runs dom0's tools.
	StateDir string
	Dom0     vmctl.Transport
	Host     vmctl.Transport
	Guests   []string // guest names, for their console logs and records
	Places   []Place
	Tools    []Tool
	// Reports are files made by the caller: status.json, doctor.json,
	// graph.svg, versions of labctl itself.
	Reports map[string][]byte
	Now     time.Time
	Log     *slog.Logger
}

// StateFiles are the state directory's files the bundle takes, relative
// to it. Nothing else of the state directory is read: users/ (password
// hashes), images/ (the users image) and ssh/ (keys) are never opened.
var StateFiles = []string{
	"journal.jsonl",
	"spec.yaml",
	"dnsmasq/dnsmasq.conf",
	"dnsmasq/dhcp-hosts",
	"dnsmasq/dnsmasq.leases",
	"dnsmasq/dnsmasq.log",
}

// GuestFiles are each guest's files, relative to guests/<name>/.
var GuestFiles = []string{"console.log", "guest.json"}

// NetCommands run in every place; the file name is the key.
var NetCommands = []struct {
	File string
	Argv []string
}{
	{"ip-addr.txt", []string{"ip", "-d", "addr"}},
	{"ip-route.txt", []string{"ip", "-d", "route", "show", "table", "all"}},
	{"ip-link.txt", []string{"ip", "-d", "link"}},
	{"ip-neigh.txt", []string{"ip", "neigh"}},
	{"bridge-fdb.txt", []string{"bridge", "fdb", "show"}},
	{"iptables-save.txt", []string{"iptables-save", "-c"}},
}

// DefaultTools are the versions a bundle records.
var DefaultTools = []Tool{
	{"dom0", []string{"uname", "-a"}},
	{"dom0", []string{"dnsmasq", "--version"}},
	{"dom0", []string{"iptables", "--version"}},
	{"dom0", []string{"ip", "-V"}},
	{"dom0", []string{"xl", "info"}},
	{"dom0", []string{"mirage", "--version"}},
	{"dom0", []string{"opam", "--version"}},
	{"dom0", []string{"ocaml", "-version"}},
	{"host", []string{"uname", "-a"}},
	{"host", []string{"VBoxManage", "--version"}},
	{"host", []string{"vagrant", "--version"}},
}

// Entry is one file of the bundle, or why it is missing.
type Entry struct {
	Name     string
	Size     int
	Missing  string // why it could not be collected
	Redacted int    // lines replaced because they held a secret
}

// Write collects everything and writes the .tar.gz to w. A file that
// cannot be collected is listed in MANIFEST.txt with the reason; only a
// failure to write the archive is an error.
func Write(ctx context.Context, w io.Writer, in Input) ([]Entry, error) {
	if in.Now.IsZero() {
		in.Now = time.Now()
	}
	if in.Log == nil {
		in.Log = slog.New(slog.DiscardHandler)
	}
	root := fmt.Sprintf("labctl-bundle-%s-%s", in.Lab, in.Now.UTC().Format("20060102T150405Z"))
	files := map[string][]byte{}
	var entries []Entry
	add := func(name string, data []byte, err error) {
		e := Entry{Name: name}
		if err != nil {
			e.Missing = oneLine(err.Error())
		} else {
			data, e.Redacted = Redact(data)
			e.Size = len(data)
			files[name] = data
		}
		entries = append(entries, e)
	}

	if in.Spec != nil {
		add("spec.yaml", in.Spec, nil)
	}
	for _, f := range StateFiles {
		b, err := readFile(ctx, in.Dom0, path.Join(in.StateDir, f))
		add("state/"+f, b, err)
	}
	for _, g := range in.Guests {
		if !safeName(g) {
			add("state/guests/invalid-name", nil, fmt.Errorf("guest name %q: not a plain name", g))
			continue
		}
		for _, f := range GuestFiles {
			b, err := readFile(ctx, in.Dom0, path.Join(in.StateDir, "guests", g, f))
			add("state/guests/"+g+"/"+f, b, err)
		}
	}
	for _, p := range in.Places {
		for _, c := range NetCommands {
			b, err := run(ctx, p.T, c.Argv)
			add("net/"+p.Name+"/"+c.File, b, err)
		}
	}
	var versions bytes.Buffer
	for _, t := range in.Tools {
		tr := in.Dom0
		if t.Where == "host" {
			tr = in.Host
		}
		out, err := run(ctx, tr, t.Argv)
		fmt.Fprintf(&versions, "== %s: %s\n", t.Where, strings.Join(t.Argv, " "))
		if err != nil {
			fmt.Fprintf(&versions, "(unavailable: %s)\n\n", oneLine(err.Error()))
			continue
		}
		versions.Write(bytes.TrimRight(out, "\n"))
		versions.WriteString("\n\n")
	}
	if lv, ok := in.Reports["versions-labctl.txt"]; ok {
		versions.Write(lv)
	}
	add("versions.txt", versions.Bytes(), nil)
	names := make([]string, 0, len(in.Reports))
	for n := range in.Reports {
		if n != "versions-labctl.txt" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		add(n, in.Reports[n], nil)
	}

	var man bytes.Buffer
	fmt.Fprintf(&man, "labctl evidence bundle of lab %s, %s\n\n", in.Lab, in.Now.UTC().Format(time.RFC3339))
	for _, e := range entries {
		switch {
		case e.Missing != "":
			fmt.Fprintf(&man, "%-40s missing: %s\n", e.Name, e.Missing)
		case e.Redacted > 0:
			fmt.Fprintf(&man, "%-40s %d bytes, %d line(s) withheld (secrets)\n", e.Name, e.Size, e.Redacted)
		default:
			fmt.Fprintf(&man, "%-40s %d bytes\n", e.Name, e.Size)
		}
	}

	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	put := func(name string, data []byte) error {
		h := &tar.Header{Name: root + "/" + name, Mode: 0o644, Size: int64(len(data)), ModTime: in.Now, Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(h); err != nil {
			return fmt.Errorf("bundle %s: %w", name, err)
		}
		_, err := tw.Write(data)
		return err
	}
	if err := put("MANIFEST.txt", man.Bytes()); err != nil {
		return entries, err
	}
	for _, e := range entries {
		if e.Missing != "" {
			continue
		}
		if err := put(e.Name, files[e.Name]); err != nil {
			return entries, err
		}
	}
	if err := tw.Close(); err != nil {
		return entries, err
	}
	return entries, gz.Close()
}

// readFile reads a file on dom0 through its transport (the same for the
// sim's namespaces, a local dom0 and SSH).
func readFile(ctx context.Context, t vmctl.Transport, p string) ([]byte, error) {
	return run(ctx, t, []string{"cat", "--", p})
}

func run(ctx context.Context, t vmctl.Transport, argv []string) ([]byte, error) {
	if t == nil {
		return nil, fmt.Errorf("%s: no transport", argv[0])
	}
	ctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	if err := t.Run(ctx, argv, nil, &out, &errb); err != nil {
		return nil, fmt.Errorf("%s on %s: %w", strings.Join(argv, " "), t, err)
	}
	return out.Bytes(), nil
}

// Secret patterns: a users-image credential
// (pbkdf2-sha256$<iter>$<salt>$<key>, service/users) and any PEM or
// OpenSSH private key.
var secretLine = regexp.MustCompile(`pbkdf2-sha256\$|PRIVATE KEY|` + regexp.QuoteMeta("b3BlbnNzaC1rZXktdjE"))

// Redact replaces each line holding a secret with a note and returns
// how many lines it replaced.
func Redact(b []byte) ([]byte, int) {
	if !secretLine.Match(b) {
		return b, 0
	}
	lines := bytes.SplitAfter(b, []byte("\n"))
	n := 0
	for i, l := range lines {
		if secretLine.Match(l) {
			nl := ""
			if bytes.HasSuffix(l, []byte("\n")) {
				nl = "\n"
			}
			lines[i] = []byte("[labctl bundle: line withheld, it held a secret]" + nl)
			n++
		}
	}
	return bytes.Join(lines, nil), n
}

func safeName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, "/\x00")
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
