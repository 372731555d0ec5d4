package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/labctl/labctl/provision"
	"github.com/spf13/cobra"
)

// The agent runs on dom0 (or in the sim's dom0 namespace): the host sends
// the request as JSON on stdin and reads JSON-lines events from stdout.
func newAgentCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:       "agent {provision|status|teardown|deploy|destroy|doctor|confirm}",
		Short:     "Run one verb on dom0 and stream JSON-lines events (used by labctl itself)",
		Hidden:    true,
		Args:      cobra.RangeArgs(1, 2),
		ValidArgs: provision.AgentVerbs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] == "confirm-watch" {
				// The commit-confirm watchdog provision starts (detached).
				if len(args) != 2 {
					return &exitError{exitUsage, fmt.Errorf("agent confirm-watch FILE")}
				}
				return provision.WatchConfirm(context.Background(), args[1], provision.Options{Log: a.log})
			}
			if len(args) != 1 {
				return &exitError{exitUsage, fmt.Errorf("agent %s takes no file", args[0])}
			}
			var req provision.AgentRequest
			dec := json.NewDecoder(os.Stdin)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				return &exitError{exitUsage, fmt.Errorf("agent request on stdin: %w", err)}
			}
			if req.Schema != provision.SchemaVersion {
				return &exitError{exitUsage, fmt.Errorf("agent request schema %d, expected %d", req.Schema, provision.SchemaVersion)}
			}
			r := provision.ServeAgent(cmd.Context(), args[0], req, provision.Options{Log: a.log}, cmd.OutOrStdout())
			if !r.Head().OK {
				return &exitError{exitFail, nil}
			}
			return nil
		},
	}
}
