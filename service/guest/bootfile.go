package guest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
)

// Boot is everything a guest process is handed by the process runtime:
// one typed value written as a file (0600) by the runtime and read by the
// guest, instead of a command-line string contract both sides must parse
// alike (issues 11 and 13).
type Boot struct {
	Config
	// ConsolePath, when set, receives the boot trace and the logs, capped
	// at ConsoleMax bytes and rotated; else stdout and stderr.
	ConsolePath string `json:"console_path,omitempty"`
	ConsoleMax  int64  `json:"console_max,omitempty"`
}

// WriteBootFile writes b to path, readable by its owner only (the config
// names the users image).
func WriteBootFile(path string, b Boot) error {
	data, err := json.Marshal(b)
	if err != nil {
		return fmt.Errorf("guest boot file %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("guest boot file: %w", err)
	}
	return nil
}

// ReadBootFile reads a file written by WriteBootFile.
func ReadBootFile(path string) (Boot, error) {
	var b Boot
	data, err := os.ReadFile(path)
	if err != nil {
		return b, fmt.Errorf("guest boot file: %w", err)
	}
	if err := json.Unmarshal(data, &b); err != nil {
		return b, fmt.Errorf("guest boot file %s: expected JSON of guest.Boot: %w", path, err)
	}
	if b.ImagePath == "" {
		return b, fmt.Errorf("guest boot file %s: field ImagePath: the users image is required", path)
	}
	return b, nil
}

// RunBoot runs the guest b describes, its console and logs set up as b
// asks: the one entry point of both guest binaries.
func RunBoot(ctx context.Context, b Boot) error {
	var console, logw io.Writer = os.Stdout, os.Stderr
	if b.ConsolePath != "" {
		c, err := OpenConsoleFile(b.ConsolePath, b.ConsoleMax)
		if err != nil {
			return err
		}
		defer c.Close()
		console, logw = c, c
	}
	log := slog.New(slog.NewTextHandler(logw, nil)).With("guest", b.Hostname)
	return Run(ctx, b.Config, log, console)
}
