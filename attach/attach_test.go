package attach

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labctl/labctl/service/users"
)

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitFor(t *testing.T, b *syncBuf, want string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for b.String() != want {
		if time.Now().After(deadline) {
			t.Fatalf("followed %q, want %q", b.String(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestFollow(t *testing.T) {
	for _, fromEnd := range []bool{false, true} {
		t.Run(map[bool]string{false: "from start", true: "from end"}[fromEnd], func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "console.log")
			if err := os.WriteFile(p, []byte("old\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var b syncBuf
			done := make(chan error, 1)
			go func() { done <- Follow(ctx, p, &b, fromEnd, time.Millisecond) }()
			want := ""
			if !fromEnd {
				want = "old\n"
				waitFor(t, &b, want)
			} else {
				time.Sleep(20 * time.Millisecond) // let it open the file at its end
			}
			appendTo(t, p, "new\n")
			want += "new\n"
			waitFor(t, &b, want)
			// Truncated: read again from the start.
			if err := os.WriteFile(p, []byte("t\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			want += "t\n"
			waitFor(t, &b, want)
			// Replaced by a new file of that name: reopened.
			tmp := p + ".new"
			if err := os.WriteFile(tmp, []byte("replaced\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(tmp, p); err != nil {
				t.Fatal(err)
			}
			want += "replaced\n"
			waitFor(t, &b, want)
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("Follow did not return after cancel")
			}
		})
	}
}

func TestFollowWaitsForTheFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "later.log")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var b syncBuf
	go Follow(ctx, p, &b, true, time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	appendTo(t, p, "first\n")
	// A file created after Follow started is read whole, even fromEnd.
	waitFor(t, &b, "first\n")
}

func appendTo(t *testing.T, p, s string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestTarget(t *testing.T) {
	cases := []struct{ path, user, pw, want, err string }{
		{"", "john", "password", "/?user=john&password=password", ""},
		{"/login", "a b", "p&q=r", "/login?user=a+b&password=p%26q%3Dr", ""},
		{"login", "u", "p", "", "absolute path"},
		{"/x?y=1", "u", "p", "", "without a query"},
	}
	for _, c := range cases {
		got, err := Target(c.path, c.user, c.pw)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), "PATH") {
				t.Errorf("Target(%q): err %v, want %q", c.path, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Target(%q, %q, %q) = %q, %v; want %q", c.path, c.user, c.pw, got, err, c.want)
		}
	}
}

func TestDemoUsable(t *testing.T) {
	hash := func(pw string) users.Credential {
		c, err := users.Hash(pw, users.MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := []struct {
		name  string
		creds map[string]users.Credential
		want  bool
	}{
		{"demo", map[string]users.Credential{"john": hash("password")}, true},
		{"john changed his password", map[string]users.Credential{"john": hash("s3cret")}, false},
		{"no john", map[string]users.Credential{"alice": hash("password")}, false},
		{"no users", nil, false},
	}
	for _, c := range cases {
		if got := DemoUsable(c.creds); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
