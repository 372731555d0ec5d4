package users

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestCheckName(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"john", true},
		{"bob.smith_2-dev", true},
		{"A", true},
		{"-dash-first", true},
		{strings.Repeat("a", MaxNameLen), true},
		{strings.Repeat("a", MaxNameLen+1), false},
		{"", false},
		{".", false},
		{"..", false},
		{".hidden", false},
		{"a/b", false},
		{"../etc/passwd", false},
		{"/etc/passwd", false},
		{"john\x00", false},
		{"jöhn", false},
		{"john ", false},
		{"a\\b", false},
		{"a:b", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckName(tt.name)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckName(%q) = %v, want ok=%v", tt.name, err, tt.ok)
			}
			if err != nil {
				var fe *FieldError
				if !errors.As(err, &fe) || fe.Field != "name" {
					t.Fatalf("error %v is not a FieldError for field name", err)
				}
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	for _, tt := range []struct {
		pw string
		ok bool
	}{{"x", true}, {"", false}, {strings.Repeat("x", MaxPasswordLen), true}, {strings.Repeat("x", MaxPasswordLen+1), false}, {"pw\x00", false}} {
		err := CheckPassword(tt.pw)
		if (err == nil) != tt.ok {
			t.Errorf("CheckPassword(len %d) = %v, want ok=%v", len(tt.pw), err, tt.ok)
		}
		if err != nil && strings.Contains(err.Error(), "xxxx") {
			t.Errorf("error echoes the password: %v", err)
		}
	}
}

func TestHashVerify(t *testing.T) {
	c, err := Hash("s3cret", MinIterations)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Salt) != SaltLen || len(c.Key) != KeyLen {
		t.Fatalf("salt %d key %d bytes", len(c.Salt), len(c.Key))
	}
	c2, err := Hash("s3cret", MinIterations)
	if err != nil {
		t.Fatal(err)
	}
	if string(c.Salt) == string(c2.Salt) {
		t.Fatal("two hashes share a salt: salt is not random")
	}
	tests := []struct {
		pw   string
		want bool
	}{{"s3cret", true}, {"s3cre", false}, {"s3cret ", false}, {"S3cret", false}, {"", false}, {"s3cret\x00", false}}
	for _, tt := range tests {
		if got := c.Verify(tt.pw); got != tt.want {
			t.Errorf("Verify(%q) = %v, want %v", tt.pw, got, tt.want)
		}
		if got := Verify(c.String(), tt.pw); got != tt.want {
			t.Errorf("Verify(string, %q) = %v, want %v", tt.pw, got, tt.want)
		}
	}
	if Verify("garbage", "s3cret") {
		t.Error("malformed stored credential verified")
	}
	for _, n := range []int{MinIterations - 1, MaxIterations + 1, 0, -5} {
		if _, err := Hash("x", n); err == nil {
			t.Errorf("Hash with %d iterations succeeded", n)
		}
	}
}

// A credential from an independent implementation (Python's
// hashlib.pbkdf2_hmac('sha256', b'password', b'saltsaltsaltsalt', 1000)).
func TestVerifyKnownAnswer(t *testing.T) {
	const stored = "pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0c2FsdA==$8nX7hwFEzIB8aPajJTYK8weHQc5Ngz0pFVAKvSu4jQA="
	if !Verify(stored, "password") {
		t.Fatal("known-answer credential does not verify")
	}
	if Verify(stored, "passwore") {
		t.Fatal("wrong password verified")
	}
}

func TestParseCredential(t *testing.T) {
	good := "pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0c2FsdA==$8nX7hwFEzIB8aPajJTYK8weHQc5Ngz0pFVAKvSu4jQA="
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"canonical", good, true},
		{"one trailing newline", good + "\n", true},
		{"two trailing newlines", good + "\n\n", false},
		{"CRLF", good + "\r\n", false},
		{"trailing space", good + " ", false},
		{"leading space", " " + good, false},
		{"other scheme", strings.Replace(good, "pbkdf2-sha256", "pbkdf2-sha1", 1), false},
		{"leading zero iterations", strings.Replace(good, "$1000$", "$01000$", 1), false},
		{"signed iterations", strings.Replace(good, "$1000$", "$+1000$", 1), false},
		{"too few iterations", strings.Replace(good, "$1000$", "$999$", 1), false},
		{"max iterations", strings.Replace(good, "$1000$", "$10000000$", 1), true},
		{"too many iterations", strings.Replace(good, "$1000$", "$10000001$", 1), false},
		{"absurd iterations", strings.Replace(good, "$1000$", "$99999999999999999999$", 1), false},
		{"url-safe base64", strings.Replace(good, "8nX7", "8-X7", 1), false},
		{"newline inside", strings.Replace(good, "$8nX7", "$8nX7\n", 1), false},
		{"unpadded salt", strings.Replace(good, "dA==$", "dA$", 1), false},
		{"short salt", "pbkdf2-sha256$1000$YWJj$8nX7hwFEzIB8aPajJTYK8weHQc5Ngz0pFVAKvSu4jQA=", false},
		{"short key", "pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0c2FsdA==$YWJj", false},
		{"extra field", good + "$x", false},
		{"missing field", "pbkdf2-sha256$1000$c2FsdHNhbHRzYWx0c2FsdA==", false},
		{"empty", "", false},
		{"huge", strings.Repeat("A", 10000), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseCredential(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParseCredential = %v, want ok=%v", err, tt.ok)
			}
			if err == nil && c.String() != strings.TrimSuffix(tt.in, "\n") {
				t.Fatalf("round trip: %q != %q", c.String(), tt.in)
			}
		})
	}
}

func TestDir(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "users"), Iterations: MinIterations}
	names, err := d.List()
	if err != nil || len(names) != 0 {
		t.Fatalf("List on missing dir = %v, %v", names, err)
	}
	if err := d.Add("john", "password"); err != nil {
		t.Fatal(err)
	}
	if err := d.Add("alice", "other"); err != nil {
		t.Fatal(err)
	}
	if err := d.Add("john", "again"); !errors.Is(err, ErrExists) {
		t.Fatalf("second Add = %v, want ErrExists", err)
	}
	if err := d.Passwd("nobody", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Passwd of missing user = %v, want ErrNotFound", err)
	}
	for _, bad := range []string{"../x", ".x", "a/b", ""} {
		var fe *FieldError
		if err := d.Add(bad, "x"); !errors.As(err, &fe) || fe.Field != "name" {
			t.Errorf("Add(%q) = %v, want name FieldError", bad, err)
		}
	}
	var fe *FieldError
	if err := d.Add("emptypw", ""); !errors.As(err, &fe) || fe.Field != "password" {
		t.Errorf("Add with empty password = %v, want password FieldError", err)
	}

	st, err := os.Stat(d.Path)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode = %v, %v; want 0700", st.Mode(), err)
	}
	st, err = os.Stat(filepath.Join(d.Path, "john"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode = %v, %v; want 0600", st.Mode(), err)
	}
	raw, _ := os.ReadFile(filepath.Join(d.Path, "john"))
	if strings.HasSuffix(string(raw), "\n") || !strings.HasPrefix(string(raw), "pbkdf2-sha256$1000$") {
		t.Fatalf("file content %q", raw)
	}

	// Stray temporary files are ignored; anything else invalid is an error.
	if err := os.WriteFile(filepath.Join(d.Path, ".john.tmp-1"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	names, err = d.List()
	if err != nil || !slices.Equal(names, []string{"alice", "john"}) {
		t.Fatalf("List = %v, %v", names, err)
	}
	creds, err := d.Load()
	if err != nil || !creds["john"].Verify("password") || !creds["alice"].Verify("other") {
		t.Fatalf("Load = %v, %v", creds, err)
	}
	if err := d.Passwd("john", "new"); err != nil {
		t.Fatal(err)
	}
	creds, _ = d.Load()
	if creds["john"].Verify("password") || !creds["john"].Verify("new") {
		t.Fatal("Passwd did not replace the credential")
	}
	if err := d.Remove("john"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove("john"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Remove = %v, want ErrNotFound", err)
	}
	if err := d.Remove("../users"); err == nil {
		t.Fatal("Remove accepted a path")
	}

	if err := os.Symlink("/etc/passwd", filepath.Join(d.Path, "evil")); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Load(); err == nil || !strings.Contains(err.Error(), "evil") {
		t.Fatalf("Load with a symlink = %v, want an error naming it", err)
	}
}

func TestDirTightensMode(t *testing.T) {
	d := Dir{Path: t.TempDir(), Iterations: MinIterations}
	if err := os.Chmod(d.Path, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := d.Add("john", "x"); err != nil {
		t.Fatal(err)
	}
	st, _ := os.Stat(d.Path)
	if st.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode %v, want 0700", st.Mode().Perm())
	}
}

func TestSeedDemo(t *testing.T) {
	d := Dir{Path: filepath.Join(t.TempDir(), "u"), Iterations: MinIterations}
	seeded, err := SeedDemo(d)
	if err != nil || !seeded {
		t.Fatalf("SeedDemo = %v, %v", seeded, err)
	}
	creds, err := d.Load()
	if err != nil || len(creds) != 1 || !creds[DemoUser].Verify(DemoPassword) {
		t.Fatalf("after seeding: %v, %v", creds, err)
	}
	// Removing the demo user and adding another must not bring it back.
	if err := d.Add("alice", "x"); err != nil {
		t.Fatal(err)
	}
	if err := d.Remove(DemoUser); err != nil {
		t.Fatal(err)
	}
	seeded, err = SeedDemo(d)
	if err != nil || seeded {
		t.Fatalf("second SeedDemo = %v, %v; want false", seeded, err)
	}
}
