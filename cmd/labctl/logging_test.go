package main

import (
	"bytes"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// At a terminal a log line is short, its level coloured unless NO_COLOR;
// anywhere else it is logfmt (a bytes.Buffer is not a terminal).
func TestLogLines(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		color bool
		want  string
	}{
		{"plain", false, "WARN the lab's users went with it users=alice,john dir=\"/tmp/a b\"\n"},
		{"colour", true, "\x1b[33mWARN\x1b[0m the lab's users went with it users=alice,john dir=\"/tmp/a b\"\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b bytes.Buffer
			l := slog.New(&humanHandler{w: &b, level: slog.LevelInfo, color: tc.color, mu: &sync.Mutex{}})
			l.With("users", "alice,john").Warn("the lab's users went with it", "dir", "/tmp/a b")
			l.Debug("hidden below the level")
			if b.String() != tc.want {
				t.Errorf("got %q\nwant %q", b.String(), tc.want)
			}
		})
	}
	var b bytes.Buffer
	newLogger(&b, slog.LevelInfo).Info("checked", "guest", "auth-1")
	if !strings.HasPrefix(b.String(), "time=") || !strings.Contains(b.String(), "level=INFO msg=checked guest=auth-1") {
		t.Errorf("not a terminal: want logfmt, got %q", b.String())
	}
}
