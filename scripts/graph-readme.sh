#!/usr/bin/env bash
# Regenerates docs/lab-sim.svg, the README's picture: `labctl graph` of a
# simulated lab with two guests, brought up in namespaces of its own and
# removed afterwards. Run as root: sudo scripts/graph-readme.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"
lab=mirage # the default lab's name, so the picture shows the defaults
if [[ -e "/run/netns/$lab-dom0" ]]; then
  echo "graph-readme: a lab named $lab is up here; remove it first (labctl down --target sim --lab $lab)" >&2
  exit 1
fi
state=$(mktemp -d)
chmod 711 "$state" # dnsmasq (user nobody) reads its hosts file under it
bin=$(mktemp -d)/labctl
go build -o "$bin" ./cmd/labctl
spec="$state/lab.yaml"
printf 'guests:\n  replicas: 2\nusers:\n  iterations: 1000\n' >"$spec"
L=(--lab "$lab" --state-dir "$state" --target sim -f "$spec")
cleanup() { "$bin" down "${L[@]}" >/dev/null 2>&1 || true; rm -rf "$state" "$(dirname "$bin")"; }
trap cleanup EXIT

"$bin" up "${L[@]}" >/dev/null
"$bin" graph "${L[@]}" -o svg 2>/dev/null >docs/lab-sim.svg.part
mv docs/lab-sim.svg.part docs/lab-sim.svg
echo "graph-readme: wrote docs/lab-sim.svg"
