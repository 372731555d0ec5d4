package users

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite service/testdata/store and store.img")

// The fixture users of service/testdata (passwords also in its README).
// Salts derive from the name so -update reproduces the same bytes.
var fixtures = []struct {
	name, password string
	iterations     int
}{
	{"john", "password", 1000},
	{"alice", "p@ss w+rd;,", 1000},
	{"bob.smith_2-dev", "Tr0ub4dor&3", 2000},
	{"carol", "pässwörd", 1000},
}

const storeDir = "../testdata/store"
const storeImage = "../testdata/store.img"

func fixtureCred(t *testing.T, name, password string, iterations int) Credential {
	t.Helper()
	sum := sha256.Sum256([]byte("labctl test fixture salt: " + name))
	c, err := HashWithSalt(password, sum[:SaltLen], iterations)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestFixtureStore(t *testing.T) {
	if *update {
		if err := os.MkdirAll(storeDir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range fixtures {
			c := fixtureCred(t, f.name, f.password, f.iterations)
			if err := os.WriteFile(filepath.Join(storeDir, f.name), []byte(c.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	ents, err := os.ReadDir(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(fixtures) {
		t.Fatalf("%s has %d files, want %d", storeDir, len(ents), len(fixtures))
	}
	for _, f := range fixtures {
		raw, err := os.ReadFile(filepath.Join(storeDir, f.name))
		if err != nil {
			t.Fatal(err)
		}
		if want := fixtureCred(t, f.name, f.password, f.iterations).String(); string(raw) != want {
			t.Errorf("%s/%s = %q, want %q (run with -update)", storeDir, f.name, raw, want)
		}
		if !Verify(string(raw), f.password) || Verify(string(raw), f.password+"x") {
			t.Errorf("fixture %s does not verify its password", f.name)
		}
	}
}

// The golden image is what the OCaml unikernel's tests can load as xvdb.
func TestGoldenImage(t *testing.T) {
	creds, err := Dir{Path: storeDir}.Load()
	if err != nil {
		t.Fatal(err)
	}
	img, err := BuildImage(creds)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(storeImage, img, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(storeImage)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(img, want) {
		t.Fatalf("image of %s differs from %s (run with -update)", storeDir, storeImage)
	}
}

func testCreds(t testing.TB, names ...string) map[string]Credential {
	t.Helper()
	m := make(map[string]Credential)
	for i, n := range names {
		salt := bytes.Repeat([]byte{byte(i + 1)}, SaltLen)
		c, err := HashWithSalt("pw-"+n, salt, MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		m[n] = c
	}
	return m
}

func TestBuildImage(t *testing.T) {
	creds := testCreds(t, "john", "alice", "bob.smith_2-dev")
	a, err := BuildImage(creds)
	if err != nil {
		t.Fatal(err)
	}
	// Same users again (a new map, so a different iteration order).
	b, err := BuildImage(maps.Clone(creds))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("same users, different image bytes")
	}
	if len(a)%ImageBlock != 0 || len(a) == 0 {
		t.Fatalf("image size %d is not a positive multiple of %d", len(a), ImageBlock)
	}
	got, err := ReadImage(bytes.NewReader(a))
	if err != nil {
		t.Fatal(err)
	}
	if !maps.EqualFunc(got, creds, func(x, y Credential) bool { return x.String() == y.String() }) {
		t.Fatalf("round trip: %v != %v", got, creds)
	}
	// Entries are sorted, USTAR, fixed metadata.
	tr := tar.NewReader(bytes.NewReader(a))
	var names []string
	for {
		h, err := tr.Next()
		if err != nil {
			break
		}
		names = append(names, h.Name)
		if h.Format != tar.FormatUSTAR || h.Mode != 0o600 || h.Uid != 0 || h.Gid != 0 || !h.ModTime.Equal(time.Unix(0, 0)) || h.Uname != "" {
			t.Errorf("entry %s: format %v mode %o uid %d gid %d mtime %v uname %q", h.Name, h.Format, h.Mode, h.Uid, h.Gid, h.ModTime, h.Uname)
		}
	}
	if !slices.Equal(names, []string{"alice", "bob.smith_2-dev", "john"}) {
		t.Fatalf("entry order %v", names)
	}

	empty, err := BuildImage(nil)
	if err != nil || len(empty) != ImageBlock {
		t.Fatalf("empty image: %d bytes, %v", len(empty), err)
	}
	if m, err := ReadImage(bytes.NewReader(empty)); err != nil || len(m) != 0 {
		t.Fatalf("reading empty image: %v, %v", m, err)
	}
	if _, err := BuildImage(map[string]Credential{"../x": creds["john"]}); err == nil {
		t.Fatal("BuildImage accepted a bad name")
	}
}

// rawTar builds an archive without BuildImage's checks, for hostile input.
func rawTar(t testing.TB, entries ...tar.Header) []byte {
	t.Helper()
	cred := testCredString(t)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range entries {
		body := []byte(cred)
		if h.Typeflag != tar.TypeReg {
			body = nil
		}
		if h.Size == 0 {
			h.Size = int64(len(body))
		} else {
			body = bytes.Repeat([]byte("A"), int(h.Size))
		}
		if h.Mode == 0 {
			h.Mode = 0o600
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func testCredString(t testing.TB) string {
	c, err := HashWithSalt("x", bytes.Repeat([]byte{7}, SaltLen), MinIterations)
	if err != nil {
		t.Fatal(err)
	}
	return c.String()
}

func TestReadImageRejects(t *testing.T) {
	reg := func(name string) tar.Header { return tar.Header{Typeflag: tar.TypeReg, Name: name} }
	good := rawTar(t, reg("john"))
	tests := []struct {
		name string
		img  []byte
		want string // substring of the error
	}{
		{"traversal", rawTar(t, reg("../etc/passwd")), "name"},
		{"absolute", rawTar(t, reg("/etc/passwd")), "name"},
		{"subdir", rawTar(t, reg("a/john")), "name"},
		{"dot", rawTar(t, reg(".john")), "name"},
		{"long traversal name via pax", rawTar(t, reg(strings.Repeat("a/", 60)+"../x")), "name"},
		{"symlink", rawTar(t, tar.Header{Typeflag: tar.TypeSymlink, Name: "john", Linkname: "/etc/shadow"}), "regular"},
		{"hardlink", rawTar(t, tar.Header{Typeflag: tar.TypeLink, Name: "john", Linkname: "alice"}), "regular"},
		{"directory", rawTar(t, tar.Header{Typeflag: tar.TypeDir, Name: "john", Mode: 0o700}), "regular"},
		{"fifo", rawTar(t, tar.Header{Typeflag: tar.TypeFifo, Name: "john"}), "regular"},
		{"duplicate", rawTar(t, reg("john"), reg("alice"), reg("john")), "duplicate"},
		{"oversized entry", rawTar(t, tar.Header{Typeflag: tar.TypeReg, Name: "john", Size: 1 << 20}), "size"},
		{"bad credential", rawTar(t, tar.Header{Typeflag: tar.TypeReg, Name: "john", Size: 100}), "credential"},
		{"garbage", bytes.Repeat([]byte("garbage!"), 1000), ""},
		{"truncated in data", good[:560], ""},
		{"truncated at entry end", good[:1024], "end-of-archive"},
		{"empty", nil, "end-of-archive"},
		{"one zero block", make([]byte, 512), "end-of-archive"},
		{"data after end", append(append([]byte{}, good...), 'x'), "non-zero"},
		{"too large", make([]byte, MaxImageSize+ImageBlock), "larger"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := ReadImage(bytes.NewReader(tt.img))
			if err == nil {
				t.Fatalf("accepted: %v", m)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not mention %q", err, tt.want)
			}
		})
	}
	if _, err := ReadImage(bytes.NewReader(good)); err != nil {
		t.Fatalf("control image rejected: %v", err)
	}
}

func TestWriteImage(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state", "users.img")
	img, err := BuildImage(testCreds(t, "john"))
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, false} {
		changed, err := WriteImage(p, img)
		if err != nil || changed != want {
			t.Fatalf("write %d: changed=%v err=%v, want %v", i, changed, err, want)
		}
	}
	st, err := os.Stat(p)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, %v", st.Mode(), err)
	}
	h, err := FileSHA256(p)
	if err != nil || h != ImageSHA256(img) {
		t.Fatalf("FileSHA256 = %s, %v; want %s", h, err, ImageSHA256(img))
	}
	creds, h2, err := ReadImageFile(p)
	if err != nil || h2 != h || len(creds) != 1 {
		t.Fatalf("ReadImageFile = %v, %s, %v", creds, h2, err)
	}
	img2, _ := BuildImage(testCreds(t, "john", "alice"))
	if changed, err := WriteImage(p, img2); err != nil || !changed {
		t.Fatalf("changed image: %v, %v", changed, err)
	}
	if h3, _ := FileSHA256(p); h3 == h {
		t.Fatal("hash did not change with the users")
	}
}

func FuzzReadImage(f *testing.F) {
	img, err := BuildImage(testCreds(f, "john", "alice"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(img)
	f.Add(rawTar(f, tar.Header{Typeflag: tar.TypeReg, Name: "../x"}))
	f.Add(rawTar(f, tar.Header{Typeflag: tar.TypeSymlink, Name: "x", Linkname: "/"}))
	f.Add(rawTar(f, tar.Header{Typeflag: tar.TypeReg, Name: "john", PAXRecords: map[string]string{"path": "x"}, Format: tar.FormatPAX}))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadImage(bytes.NewReader(data))
		if err != nil {
			return
		}
		for n := range m {
			if !ValidName(n) {
				t.Fatalf("accepted invalid name %q", n)
			}
		}
		// Whatever was accepted survives a rebuild unchanged.
		img, err := BuildImage(m)
		if err != nil {
			t.Fatalf("rebuild: %v", err)
		}
		m2, err := ReadImage(bytes.NewReader(img))
		if err != nil {
			t.Fatalf("re-read: %v", err)
		}
		if !maps.EqualFunc(m, m2, func(x, y Credential) bool { return x.String() == y.String() }) {
			t.Fatal("round trip changed the users")
		}
	})
}

func BenchmarkBuildImage(b *testing.B) {
	names := make([]string, 100)
	for i := range names {
		names[i] = "user" + strings.Repeat("x", i%10) + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	creds := testCreds(b, names...)
	b.ResetTimer()
	for b.Loop() {
		if _, err := BuildImage(creds); err != nil {
			b.Fatal(err)
		}
	}
}
