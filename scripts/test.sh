#!/usr/bin/env bash
# The whole test suite, as root (namespace tests need it). In CI
# (CI=true) nothing that needs root or a tool may skip: it fails.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"
# Namespaces, links and iptables need root: re-run through sudo if needed.
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then exec sudo -E env "PATH=$PATH" bash "$0" "$@"; fi
  echo "test.sh: run as root: the lab is built from network namespaces" >&2
  exit 1
fi
bash scripts/install-deps.sh --test
# The real-tool kits beside the project (../shared/tools): their packages
# now, their checks at the end; the Go tests parse .xl files with xl.
bash scripts/check-real-tools.sh --install
unformatted=$(gofmt -l .)
if [[ -n "$unformatted" ]]; then
  echo "gofmt would change: $unformatted" >&2
  exit 1
fi
go vet ./...
# The OCaml test and the real-tool checks need no namespace and work in
# directories of their own (dune's _build, mktemp): they run beside the Go
# tests, which on 2 cores leave about a third of the CPU idle while their
# labs wait on the kernel and on timeouts. That hides their ~30-60 s; their
# output is printed after the Go tests', each under its heading.
side=$(mktemp -d)
trap 'rm -rf "$side"' EXIT
(
  set +e
  (cd service/unikernel && dune test --force) >"$side/dune.log" 2>&1
  echo $? >"$side/dune.rc"
  bash scripts/check-real-tools.sh >"$side/real.log" 2>&1
  echo $? >"$side/real.rc"
) </dev/null &
sidejob=$!
gorc=0
go test -race -count=1 -timeout 30m ./... || gorc=$?
wait "$sidejob" || true
echo "== OCaml: the unikernel's request logic against service/testdata (dune test)"
cat "$side/dune.log"
echo "== real tools: the unikernel against mirage's interfaces, .xl files with Xen's xl"
cat "$side/real.log"
dunerc=$(cat "$side/dune.rc" 2>/dev/null || echo 1)
realrc=$(cat "$side/real.rc" 2>/dev/null || echo 1)
if ((gorc != 0 || dunerc != 0 || realrc != 0)); then
  echo "test.sh: failed: go test rc=$gorc, dune test rc=$dunerc, real-tool checks rc=$realrc" >&2
  exit 1
fi
