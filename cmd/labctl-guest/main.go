// Command labctl-guest is the sim's reference guest as a small binary of
// its own: the process runtime starts one per guest, so its start-up (no
// CLI, no provisioning code) is what a guest costs (issue 13).
//
// Usage: labctl-guest [guest run] --config FILE [--state=DIR]
// (--state only marks the process for the runtime; "guest run" is
// accepted so the runtime can start either this or `labctl guest run`).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/labctl/labctl/service/guest"
)

// configArg finds --config FILE or --config=FILE; everything else (the
// "guest run" words, the --state marker) is ignored.
func configArg(args []string) string {
	var config string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case a == "--config" && i+1 < len(args):
			config = args[i+1]
			i++
		case strings.HasPrefix(a, "--config="):
			config = strings.TrimPrefix(a, "--config=")
		}
	}
	return config
}

func main() {
	config := configArg(os.Args[1:])
	if config == "" {
		fmt.Fprintln(os.Stderr, "labctl-guest: --config FILE (a guest.Boot JSON file) is required")
		os.Exit(2)
	}
	b, err := guest.ReadBootFile(config)
	if err != nil {
		fmt.Fprintln(os.Stderr, "labctl-guest:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := guest.RunBoot(ctx, b); err != nil {
		fmt.Fprintln(os.Stderr, "labctl-guest:", err)
		os.Exit(1)
	}
}
