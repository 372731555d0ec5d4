package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
)

func newValidateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "validate",
		Short: "Check the lab spec alone (-f FILE, else ./lab.yaml, else the defaults): no root, no lab, no state touched",
		Long: `validate reads the lab spec the other verbs would use (-f FILE, else
./lab.yaml, else the built-in defaults) strictly, as they do, and checks
every field. It needs no root and touches no lab or state directory, so it
fits a pre-commit hook or a CI lint step. Exit 0: valid; exit 2: invalid,
each problem naming its field (network.subnet, guests.replicas, …).`,
		Example: `  labctl validate
  labctl validate -f labs/ux.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			// loadSpec is exactly what every verb runs first; its errors
			// are bad input (exit 2) naming the file and field.
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			what := a.specFile
			if what == "" {
				what = "lab.yaml"
				if _, err := os.Stat(what); err != nil {
					what = "the built-in defaults"
				}
			}
			g := spec.Guests
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (lab %s, guests %s-1..%s-%d, runtime %s)\n",
				what, spec.Lab, g.Name, g.Name, g.Replicas, g.Runtime)
			return nil
		},
	}
}
