#!/usr/bin/env bash
# The parts of the lab only Xen and opam can prove, checked against the
# real tools in ../shared/tools (they stay outside the project):
#   unikernel-api  config.ml against mirage's own interfaces (v4.10.5 and
#                  v4.11.1), unikernel.ml against cohttp-mirage, mirage-kv,
#                  tar-mirage and mirage's -t xen glue: three "ok" lines
#   xl-parse       every golden .xl with Xen 4.17's own xl (dry run)
# The Go tests run xl-parse too: on every shape of .xl labctl renders, on
# the .xl of `deploy --runtime xen --plan` on the sim, and on broken files
# it must reject (vmctl/xen, cmd/labctl).
# Usage: scripts/check-real-tools.sh [--install]   (--install: the kits'
# Debian packages). .ci/run calls it; CI=true makes a missing kit fatal.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=${LABCTL_SHARED_TOOLS:-../shared/tools}
if [[ ! -d "$tools" ]]; then
	if [[ "${CI:-}" == true ]]; then
		echo "check-real-tools: $tools not found; CI runs beside ../shared" >&2
		exit 1
	fi
	echo "check-real-tools: $tools not found; skipped" >&2
	exit 0
fi
if [[ "${1:-}" == --install ]]; then
	bash "$tools/unikernel-api/run.sh" --install
	bash "$tools/xl-parse/run.sh" --install
	exit 0
fi

out=$(bash "$tools/unikernel-api/run.sh" service/unikernel) || { echo "$out"; echo "check-real-tools: unikernel-api failed" >&2; exit 1; }
echo "$out"
oks=$(grep -c '^ok ' <<<"$out" || true)
[[ "$oks" -eq 3 ]] || { echo "check-real-tools: unikernel-api printed $oks ok lines, want 3" >&2; exit 1; }

shopt -s nullglob
golden=(vmctl/xen/testdata/golden/*.xl)
((${#golden[@]})) || { echo "check-real-tools: no golden .xl files" >&2; exit 1; }
bash "$tools/xl-parse/run.sh" "${golden[@]}" >/dev/null
echo "ok    xl parses ${#golden[@]} golden .xl files: ${golden[*]##*/}"
