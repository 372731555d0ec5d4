// Package unikernel carries the MirageOS sources of the authentication
// unikernel (config.ml, unikernel.ml and the pure request logic) inside the
// labctl binary, so the agent in dom0 can build them with xen.Build.
package unikernel

import (
	"embed"
	"fmt"
	"path"
)

//go:embed config.ml unikernel.ml src/labctl_auth.ml src/labctl_auth.mli
var files embed.FS

// Name is what config.ml registers: mirage builds dist/auth.xen.
const Name = "auth"

// embedded are the files mirage needs; the dune test project around them
// (dune-project, dune files, test/) stays behind.
var embedded = []string{"config.ml", "unikernel.ml", "src/labctl_auth.ml", "src/labctl_auth.mli"}

// Sources returns the files a build directory needs, keyed by their flat
// name there: mirage compiles every .ml beside config.ml into the unikernel.
func Sources() (map[string][]byte, error) {
	out := make(map[string][]byte, len(embedded))
	for _, p := range embedded {
		b, err := files.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("unikernel sources: %w", err)
		}
		out[path.Base(p)] = b
	}
	return out, nil
}
