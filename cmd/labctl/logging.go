package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"

	"golang.org/x/term"
)

// newLogger is labctl's logger on w (stderr): for a person at a
// terminal, short lines ("WARN msg key=value", the level coloured unless
// NO_COLOR is set, https://no-color.org); for anything else (CI, a pipe,
// a file) logfmt with time, which tools parse.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
	}
	_, noColor := os.LookupEnv("NO_COLOR")
	return slog.New(&humanHandler{w: w, level: level, color: !noColor, mu: &sync.Mutex{}})
}

// humanHandler writes one short line per record for a terminal.
type humanHandler struct {
	w      io.Writer
	level  slog.Level
	color  bool
	attrs  []slog.Attr
	groups string
	mu     *sync.Mutex
}

func (h *humanHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *humanHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	lvl := r.Level.String()
	if h.color {
		code := map[slog.Level]string{slog.LevelDebug: "90", slog.LevelInfo: "36", slog.LevelWarn: "33", slog.LevelError: "31"}[r.Level]
		if code == "" {
			code = "0"
		}
		lvl = "\x1b[" + code + "m" + lvl + "\x1b[0m"
	}
	fmt.Fprintf(&b, "%s %s", lvl, r.Message)
	add := func(a slog.Attr) {
		if a.Equal(slog.Attr{}) {
			return
		}
		v := a.Value.Resolve().String()
		if strings.ContainsAny(v, " \t\"=") || v == "" {
			v = fmt.Sprintf("%q", v)
		}
		fmt.Fprintf(&b, " %s%s=%s", h.groups, a.Key, v)
	}
	for _, a := range h.attrs {
		add(a)
	}
	r.Attrs(func(a slog.Attr) bool { add(a); return true })
	b.WriteByte('\n')
	h.mu.Lock()
	defer h.mu.Unlock()
	_, err := io.WriteString(h.w, b.String())
	return err
}

func (h *humanHandler) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.attrs = append(append([]slog.Attr{}, h.attrs...), as...)
	return &c
}

func (h *humanHandler) WithGroup(name string) slog.Handler {
	c := *h
	c.groups += name + "."
	return &c
}
