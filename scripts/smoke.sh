#!/usr/bin/env bash
# Smoke test: the simulated lab end to end through the labctl binary,
# then a check that nothing of it is left.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"
lab="smoke$$"
state=$(mktemp -d)
bin=$(mktemp -d)/labctl
go build -o "$bin" ./cmd/labctl
L=(--lab "$lab" --state-dir "$state")
cleanup() { "$bin" sim down "${L[@]}" >/dev/null 2>&1 || true; rm -rf "$state" "$(dirname "$bin")"; }
trap cleanup EXIT

"$bin" sim up "${L[@]}"
"$bin" provision --target sim "${L[@]}"
"$bin" provision --target sim "${L[@]}" --json | grep -q '"changed": false'
"$bin" status --target sim "${L[@]}"
"$bin" teardown --target sim "${L[@]}"
"$bin" sim down "${L[@]}"

left=$(ip netns list | awk '{print $1}' | grep -E "^${lab}-" || true)
[[ -z "$left" ]] || { echo "smoke: namespaces left: $left" >&2; exit 1; }
if pgrep -f "$state/" >/dev/null; then echo "smoke: processes left" >&2; exit 1; fi
echo "smoke: ok"
