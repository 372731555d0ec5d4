package toolver

import (
	"fmt"
	"sync"

	"github.com/hashicorp/go-version"
)

// MinXen() is the first Xen with the PVHv2 boot ABI that Mirage >= 3.9
// guests need.
var MinXen = sync.OnceValue(func() *version.Version { return version.Must(version.NewVersion("4.10.0")) })

// Xen parses the xen_version field of `xl info` ("4.19.1", "4.17.3-pre",
// or "4.0.1" as vmctl/xen builds it from xen_major/minor/extra).
func Xen(s string) (*version.Version, error) {
	if s == "" {
		return nil, fmt.Errorf("xl info: expected xen_version (or xen_major/xen_minor), got none")
	}
	v, err := version.NewVersion(s)
	if err != nil {
		return nil, fmt.Errorf("xl info: expected xen_version like 4.19.1, got %q: %w", s, err)
	}
	return v, nil
}
