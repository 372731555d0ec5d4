package toolver

import (
	"fmt"
	"regexp"
	"sync"

	"github.com/hashicorp/go-version"
)

// MirageRange is the mirage tool range service/unikernel/config.ml declares
// in its first line; a test in vmctl/xen keeps the two in step. Below
// 4.10.5 mirage's stack is static unless asked (DHCP became the default in
// 4.10.5); from 4.12.0 on its API is unverified. Both ends are checked by
// type-checking config.ml against mirage's own interfaces at v4.10.5 and
// v4.11.1 (../shared/tools/unikernel-api, run by .ci/run).
const MirageRange = ">= " + MinMirage + ", < " + MirageBelow

// The ends of MirageRange.
const (
	MinMirage   = "4.10.5"
	MirageBelow = "4.12.0"
)

// FixMirage is the opam command that installs a mirage in MirageRange;
// opamArgs (e.g. "--root R --switch S") name where.
func FixMirage(opamArgs string) string {
	if opamArgs != "" {
		opamArgs += " "
	}
	return "opam install " + opamArgs + "'mirage>=" + MinMirage + "' 'mirage<" + MirageBelow + "'"
}

// MirageConstraint() is MirageRange parsed.
var MirageConstraint = sync.OnceValue(func() version.Constraints { return version.MustConstraints(version.NewConstraint(MirageRange)) })

var bareRelease = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+$`) })

// Mirage parses `mirage --version`, which for a release prints a bare
// "4.11.0". A pinned development checkout prints a git description
// ("v4.11.0-3-gdeadbee") or a hash: refused, since such a version says
// nothing about which API config.ml meets. The output is taken at its
// word: a stale install that prints an old number is judged by it.
func Mirage(out string) (*version.Version, error) {
	s := firstLine(out)
	if s == "" {
		return nil, fmt.Errorf("mirage --version: expected a version, got no output")
	}
	if !bareRelease().MatchString(s) {
		return nil, fmt.Errorf("mirage --version: expected a bare release version like 4.11.0, got %q (a development build or pin? install a release: %s)", s, FixMirage(""))
	}
	v, err := version.NewVersion(s)
	if err != nil {
		return nil, fmt.Errorf("mirage --version: expected a release version like 4.11.0, got %q: %w", s, err)
	}
	return v, nil
}
