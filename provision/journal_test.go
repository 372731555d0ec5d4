package provision

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Each record is one append: the file grows by whole lines and is never
// renamed over while a run records.
func TestJournalAppends(t *testing.T) {
	dir := t.TempDir()
	j, err := OpenJournal(dir, "lab")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, JournalFile)); !os.IsNotExist(err) {
		t.Fatalf("an empty journal was written: %v", err)
	}
	j.Record(Entry{Kind: KindLinkCreated, Link: "br0"})
	st1, _ := os.Stat(filepath.Join(dir, JournalFile))
	j.Record(Entry{Kind: KindSysctl, Key: "net.ipv4.ip_forward", Prior: "0"}, Entry{Kind: KindDir, Path: "/x"})
	st2, err := os.Stat(filepath.Join(dir, JournalFile))
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(st1, st2) || st2.Mode().Perm() != 0o600 {
		t.Fatalf("journal replaced or mode %v", st2.Mode())
	}
	b, _ := os.ReadFile(filepath.Join(dir, JournalFile))
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], `{"schema":2,"lab":"lab"`) || !strings.HasPrefix(lines[1], `{"record":{"kind":"link-created"`) {
		t.Fatalf("journal file:\n%s", b)
	}
}

func TestJournalReplay(t *testing.T) {
	boot, ns := here()
	hdr := `{"schema":2,"lab":"lab","boot_id":"` + boot + `","netns":"` + ns + `"}` + "\n"
	rec := func(e Entry) string { b, _ := json.Marshal(journalLine{Record: &e}); return string(b) + "\n" }
	fgt := func(e Entry) string { b, _ := json.Marshal(journalLine{Forget: &e}); return string(b) + "\n" }
	br := Entry{Kind: KindLinkCreated, Link: "br0"}
	fw := Entry{Kind: KindSysctl, Key: "net.ipv4.ip_forward", Prior: "0"}
	for _, tc := range []struct {
		name    string
		file    string
		want    []string // entry descriptions after open
		compact bool     // the file is rewritten at open
		err     string
	}{
		{name: "records", file: hdr + rec(br) + rec(fw), want: []string{"created link br0", "net.ipv4.ip_forward was 0"}},
		{name: "first record wins", file: hdr + rec(fw) + rec(Entry{Kind: KindSysctl, Key: "net.ipv4.ip_forward", Prior: "1"}), want: []string{"net.ipv4.ip_forward was 0"}},
		{name: "forget", file: hdr + rec(br) + rec(fw) + fgt(br), want: []string{"net.ipv4.ip_forward was 0"}, compact: true},
		{name: "all forgotten", file: hdr + rec(br) + fgt(br), compact: true},
		{name: "torn last line", file: hdr + rec(br) + `{"record":{"kind":"sysc`, want: []string{"created link br0"}, compact: true},
		{name: "garbage inside", file: hdr + rec(br) + "{oops\n" + rec(fw), err: "line 3: not valid JSON"},
		{name: "neither", file: hdr + "{}\n", err: "line 2: neither a record nor a forget"},
		{name: "bad header", file: "{not json\n", err: "line 1: not a journal header"},
		// A full disk or a kill during the first write (issue 10 item 8):
		// nothing was recorded, so nothing was changed.
		{name: "empty file", file: ""},
		{name: "torn header", file: hdr[:17]},
		{name: "header only", file: hdr},
		{name: "other schema", file: `{"schema":9}` + "\n", err: "line 1: schema 9, expected 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, JournalFile)
			os.WriteFile(path, []byte(tc.file), 0o600)
			before, _ := os.Stat(path)
			j, err := OpenJournal(dir, "lab")
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), path) {
					t.Fatalf("error %v, want one naming %s and %q", err, path, tc.err)
				}
				if b, _ := os.ReadFile(path); string(b) != tc.file {
					t.Fatal("a journal labctl cannot read was changed")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range j.List() {
				got = append(got, e.String())
			}
			if strings.Join(got, "|") != strings.Join(tc.want, "|") {
				t.Fatalf("entries %q, want %q", got, tc.want)
			}
			after, err := os.Stat(path)
			switch {
			case len(tc.want) == 0 && !os.IsNotExist(err):
				t.Fatalf("an empty journal stayed on disk: %v", err)
			case len(tc.want) > 0 && os.SameFile(before, after) == tc.compact:
				t.Fatalf("rewritten: %v, want %v", !os.SameFile(before, after), tc.compact)
			}
			// Whatever was read, a re-open reads the same.
			j2, err := OpenJournal(dir, "lab")
			if err != nil || len(j2.List()) != len(tc.want) {
				t.Fatalf("re-open: %v, %d entries", err, len(j2.List()))
			}
		})
	}
}

// A journal written by labctl before the write-ahead format is converted
// once; one from another namespace is set aside.
func TestJournalLegacy(t *testing.T) {
	boot, ns := here()
	for _, tc := range []struct {
		name, netns string
		entries     int
		stale       bool
	}{
		{name: "current", netns: ns, entries: 1},
		{name: "stale", netns: "net:[1]", stale: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			legacy := filepath.Join(dir, legacyJournalFile)
			doc := `{"schema":1,"lab":"lab","boot_id":"` + boot + `","netns":"` + tc.netns + `","entries":[{"kind":"link-created","link":"br0","time":"2026-11-26T00:00:00Z"}]}`
			os.WriteFile(legacy, []byte(doc), 0o600)
			j, err := OpenJournal(dir, "lab")
			if err != nil {
				t.Fatal(err)
			}
			if len(j.List()) != tc.entries || (j.Stale != "") != tc.stale {
				t.Fatalf("entries %v, stale %q", j.List(), j.Stale)
			}
			if _, err := os.Stat(legacy + ".stale"); tc.stale && err != nil {
				t.Fatalf("stale legacy journal not set aside as %s.stale: %v", legacy, err)
			}
			if _, err := os.Stat(legacy); !os.IsNotExist(err) {
				t.Fatalf("legacy journal left in place: %v", err)
			}
			j2, err := OpenJournal(dir, "lab")
			if err != nil || len(j2.List()) != tc.entries {
				t.Fatalf("after conversion: %v %v", err, j2.List())
			}
		})
	}
}

// FuzzJournal: no journal file makes labctl panic; whatever opens re-opens
// to the same entries.
func FuzzJournal(f *testing.F) {
	boot, ns := here()
	f.Add(`{"schema":2,"lab":"lab","boot_id":"` + boot + `","netns":"` + ns + `"}` + "\n" + `{"record":{"kind":"dir","path":"/x","time":"2026-11-26T00:00:00Z"}}` + "\n")
	f.Add(`{"schema":2}` + "\n" + `{"forget":{"kind":"dir"}}`)
	f.Add("{not json")
	f.Fuzz(func(t *testing.T, file string) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, JournalFile), []byte(file), 0o600)
		j, err := OpenJournal(dir, "lab")
		if err != nil {
			return
		}
		j2, err := OpenJournal(dir, "lab")
		if err != nil || len(j2.List()) != len(j.List()) {
			t.Fatalf("re-open: %v, %d entries, first open %d", err, len(j2.List()), len(j.List()))
		}
	})
}

func TestJournalLegacyGarbage(t *testing.T) {
	for _, doc := range []string{"{oops", `{"schema":7}`} {
		dir := t.TempDir()
		legacy := filepath.Join(dir, legacyJournalFile)
		os.WriteFile(legacy, []byte(doc), 0o600)
		if _, err := OpenJournal(dir, "lab"); err == nil || !strings.Contains(err.Error(), legacy) {
			t.Errorf("%q: error %v, want one naming %s", doc, err, legacy)
		}
		if b, _ := os.ReadFile(legacy); string(b) != doc {
			t.Errorf("%q: the legacy journal was changed", doc)
		}
	}
}
