#!/usr/bin/env bash
# The main job on a fresh Debian/Ubuntu machine with Go: install what
# labctl needs, build it into ./bin, and bring up the simulated lab
# (labctl up --target sim). Extra arguments go to labctl up.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"
# Namespaces, links and iptables need root: re-run through sudo if needed.
if [[ $(id -u) -ne 0 ]]; then
  if command -v sudo >/dev/null; then exec sudo -E env "PATH=$PATH" bash "$0" "$@"; fi
  echo "up.sh: run as root: the lab is built from network namespaces" >&2
  exit 1
fi
bash scripts/install-deps.sh
mkdir -p bin
# Static, like the build Vagrant uploads to dom0: it runs on any libc and
# starts without the dynamic loader (every provision starts labctl).
CGO_ENABLED=0 go build -o bin/labctl ./cmd/labctl
CGO_ENABLED=0 go build -o bin/labctl-guest ./cmd/labctl-guest # the sim's guest, found next to labctl
exec bin/labctl up --target sim "$@"
