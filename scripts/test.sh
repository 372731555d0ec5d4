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
go test -race -count=1 -timeout 30m ./...
echo "== OCaml: the unikernel's request logic against service/testdata (dune test)"
(cd service/unikernel && dune test --force)
echo "== real tools: the unikernel against mirage's interfaces, .xl files with Xen's xl"
bash scripts/check-real-tools.sh
