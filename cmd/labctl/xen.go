package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/labctl/labctl/provision"
)

// printXenPlans shows, for deploy --runtime xen --plan, every command a
// deploy would run and the full .xl it would write.
func printXenPlans(w io.Writer, r provision.Result) {
	for _, p := range r.XenPlans {
		fmt.Fprintln(w, "\nwould run:")
		for _, c := range p.Commands {
			fmt.Fprintf(w, "  %s\n      # %s\n", strings.Join(c.Argv, " "), c.Why)
		}
		fmt.Fprintf(w, "\nwould write %s:\n%s", p.XLPath, p.XL)
	}
}
