package vectors

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	in := "# comment\n\nok\tGET\t/?a={x*3}b\t200\thello\\tj\\\\n!\\n\nhead\tHEAD\t*\t401\t\n"
	vs, err := Parse(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []Vector{
		{Name: "ok", Method: "GET", Target: "/?a=xxxb", Status: 200, Body: "hello\tj\\n!\n", Line: 3},
		{Name: "head", Method: "HEAD", Target: "*", Status: 401, Body: "", Line: 4},
	}
	if len(vs) != len(want) {
		t.Fatalf("got %d vectors, want %d", len(vs), len(want))
	}
	for i := range want {
		if vs[i] != want[i] {
			t.Errorf("vector %d = %+v, want %+v", i, vs[i], want[i])
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ name, line, want string }{
		{"four fields", "a\tGET\t/\t200", "fields"},
		{"six fields", "a\tGET\t/\t200\tx\ty", "fields"},
		{"bad name", "a b\tGET\t/\t200\tx", "name"},
		{"empty method", "a\t\t/\t200\tx", "method"},
		{"space in target", "a\tGET\t/ x\t200\tx", "target"},
		{"empty target", "a\tGET\t\t200\tx", "target"},
		{"lone brace", "a\tGET\t/{\t200\tx", "macro"},
		{"macro no star", "a\tGET\t/{A3}\t200\tx", "macro"},
		{"macro zero", "a\tGET\t/{A*0}\t200\tx", "repeat"},
		{"macro leading zero", "a\tGET\t/{A*01}\t200\tx", "repeat"},
		{"macro huge", "a\tGET\t/{A*99999999}\t200\tx", "repeat"},
		{"status word", "a\tGET\t/\tOK\tx", "status"},
		{"status range", "a\tGET\t/\t999\tx", "status"},
		{"bad escape", "a\tGET\t/\t200\tx\\r", "escape"},
		{"trailing backslash", "a\tGET\t/\t200\tx\\", "backslash"},
		{"CR", "a\tGET\t/\t200\tx\r", "control"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.line + "\n"))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "line 1") {
				t.Fatalf("error %v, want one naming line 1 and %q", err, tt.want)
			}
		})
	}
	if _, err := Parse(strings.NewReader("a\tGET\t/\t200\tx\na\tGET\t/\t200\tx\n")); err == nil || !strings.Contains(err.Error(), "already used") {
		t.Fatalf("duplicate name: %v", err)
	}
}

// The shared file itself must parse and cover every hostile class the
// contract promises an answer for.
func TestSharedFile(t *testing.T) {
	vs, err := ParseFile("../testdata/vectors.tsv")
	if err != nil {
		t.Fatal(err)
	}
	has := func(pred func(Vector) bool) bool {
		for _, v := range vs {
			if pred(v) {
				return true
			}
		}
		return false
	}
	classes := map[string]func(Vector) bool{
		"200":             func(v Vector) bool { return v.Status == 200 },
		"slash in user":   func(v Vector) bool { return strings.Contains(v.Target, "user=john/") },
		"dotdot user":     func(v Vector) bool { return strings.Contains(v.Target, "user=..&") },
		"NUL":             func(v Vector) bool { return strings.Contains(v.Target, "%00") },
		"duplicate":       func(v Vector) bool { return strings.Count(v.Target, "user=") > 1 },
		"64 KiB value":    func(v Vector) bool { return len(v.Target) > 65536 },
		"bad encoding":    func(v Vector) bool { return strings.Contains(v.Target, "%zz") },
		"other method":    func(v Vector) bool { return v.Method == "POST" && v.Status == 405 },
		"HEAD":            func(v Vector) bool { return v.Method == "HEAD" },
		"empty user":      func(v Vector) bool { return strings.Contains(v.Target, "user=&") },
		"missing":         func(v Vector) bool { return v.Body == "No user given\n" },
		"unknown user":    func(v Vector) bool { return strings.Contains(v.Target, "user=mallory") },
		"wrong password":  func(v Vector) bool { return v.Name == "wrong-password" && v.Status == 401 },
		"non-ascii utf-8": func(v Vector) bool { return strings.Contains(v.Target, "%C3%A4") },
	}
	for name, pred := range classes {
		if !has(pred) {
			t.Errorf("no vector for %s", name)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add("a\tGET\t/{A*3}\t200\thello\\n\n")
	f.Add("# c\n\nx\tHEAD\t*\t401\t\n")
	f.Fuzz(func(t *testing.T, in string) {
		vs, err := Parse(strings.NewReader(in))
		if err != nil {
			return
		}
		for _, v := range vs {
			if v.Status < 100 || v.Status > 599 || v.Target == "" || strings.ContainsAny(v.Target, " \t\r\n") {
				t.Fatalf("accepted bad vector %+v", v)
			}
		}
	})
}
