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

	"github.com/labctl/labctl/netsetup"
	"github.com/labctl/labctl/statedir"
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
	statedir.JournalFile,
	statedir.SpecFile,
	dnsmasqFiles.ConfPath(),
	dnsmasqFiles.HostsPath(),
	dnsmasqFiles.LeasePath(),
	dnsmasqFiles.LogPath(),
}

// dnsmasqFiles names the lab's dnsmasq files relative to its state directory.
var dnsmasqFiles = netsetup.DnsmasqConfig{Dir: statedir.DnsmasqDir}

// GuestFiles are each guest's files, in its directory (statedir.Layout.Guest).
var GuestFiles = []string{statedir.ConsoleLog, statedir.GuestRecord}

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
	c := &collector{files: map[string][]byte{}}
	c.collectState(ctx, in)
	c.collectGuests(ctx, in)
	c.collectNet(ctx, in)
	c.add("versions.txt", versions(ctx, in), nil)
	c.collectReports(in)
	man := manifest(in, c.entries)
	return c.entries, c.writeArchive(w, in, man)
}

// collector holds the files gathered for the bundle and one entry per
// file, in the order they were collected.
type collector struct {
	files   map[string][]byte
	entries []Entry
}

// add records one file: its redacted bytes, or why it is missing.
func (c *collector) add(name string, data []byte, err error) {
	e := Entry{Name: name}
	if err != nil {
		e.Missing = oneLine(err.Error())
	} else {
		data, e.Redacted = Redact(data)
		e.Size = len(data)
		c.files[name] = data
	}
	c.entries = append(c.entries, e)
}

// collectState adds the spec and the state directory's StateFiles.
func (c *collector) collectState(ctx context.Context, in Input) {
	if in.Spec != nil {
		c.add("spec.yaml", in.Spec, nil)
	}
	for _, f := range StateFiles {
		b, err := readFile(ctx, in.Dom0, path.Join(in.StateDir, f))
		c.add("state/"+f, b, err)
	}
}

// collectGuests adds each guest's GuestFiles. A guest whose name is not a
// plain name is listed as missing and not read.
func (c *collector) collectGuests(ctx context.Context, in Input) {
	for _, g := range in.Guests {
		if !safeName(g) {
			c.add("state/guests/invalid-name", nil, fmt.Errorf("guest name %q: not a plain name", g))
			continue
		}
		for _, f := range GuestFiles {
			b, err := readFile(ctx, in.Dom0, statedir.Of(in.StateDir).GuestFile(g, f))
			c.add("state/guests/"+g+"/"+f, b, err)
		}
	}
}

// collectNet runs the NetCommands in every place.
func (c *collector) collectNet(ctx context.Context, in Input) {
	for _, p := range in.Places {
		for _, cmd := range NetCommands {
			b, err := run(ctx, p.T, cmd.Argv)
			c.add("net/"+p.Name+"/"+cmd.File, b, err)
		}
	}
}

// versions runs the version probes and returns versions.txt: each probe's
// output (or why it was unavailable), then labctl's own versions report.
func versions(ctx context.Context, in Input) []byte {
	var buf bytes.Buffer
	for _, t := range in.Tools {
		tr := in.Dom0
		if t.Where == "host" {
			tr = in.Host
		}
		out, err := run(ctx, tr, t.Argv)
		fmt.Fprintf(&buf, "== %s: %s\n", t.Where, strings.Join(t.Argv, " "))
		if err != nil {
			fmt.Fprintf(&buf, "(unavailable: %s)\n\n", oneLine(err.Error()))
			continue
		}
		buf.Write(bytes.TrimRight(out, "\n"))
		buf.WriteString("\n\n")
	}
	if lv, ok := in.Reports["versions-labctl.txt"]; ok {
		buf.Write(lv)
	}
	return buf.Bytes()
}

// collectReports adds the caller's reports sorted by name, except
// versions-labctl.txt, which goes into versions.txt.
func (c *collector) collectReports(in Input) {
	names := make([]string, 0, len(in.Reports))
	for n := range in.Reports {
		if n != "versions-labctl.txt" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	for _, n := range names {
		c.add(n, in.Reports[n], nil)
	}
}

// manifest returns MANIFEST.txt: one line per entry with its size, how
// many lines were withheld, or why it is missing.
func manifest(in Input, entries []Entry) []byte {
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
	return man.Bytes()
}

// writeArchive writes the .tar.gz to w: MANIFEST.txt, then every file
// that was collected, all under one root folder named after the lab and
// the time.
func (c *collector) writeArchive(w io.Writer, in Input, man []byte) error {
	root := fmt.Sprintf("labctl-bundle-%s-%s", in.Lab, in.Now.UTC().Format("20060102T150405Z"))
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
	if err := put("MANIFEST.txt", man); err != nil {
		return err
	}
	for _, e := range c.entries {
		if e.Missing != "" {
			continue
		}
		if err := put(e.Name, c.files[e.Name]); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return gz.Close()
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
