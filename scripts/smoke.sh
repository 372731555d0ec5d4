#!/usr/bin/env bash
# Smoke test: the main job end to end through the labctl binary —
# labctl up --target sim, the article's curl from the host namespace,
# labctl down — then a check that nothing of the lab is left.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"
lab="smoke$$"
state=$(mktemp -d)
chmod 711 "$state" # dnsmasq (user nobody) reads its hosts file under it
bin=$(mktemp -d)/labctl
CGO_ENABLED=0 go build -o "$bin" ./cmd/labctl # as scripts/up.sh builds it
CGO_ENABLED=0 go build -o "$(dirname "$bin")/labctl-guest" ./cmd/labctl-guest # the sim's guest, found next to labctl
L=(--lab "$lab" --state-dir "$state" --target sim)
cleanup() {
  rc=$?
  if ((rc != 0)); then
    # The evidence, before down removes it (CI keeps labctl-bundles/).
    mkdir -p labctl-bundles
    "$bin" bundle "${L[@]}" -o "labctl-bundles/smoke-$lab.tar.gz" >/dev/null 2>&1 || true
  fi
  "$bin" down "${L[@]}" >/dev/null 2>&1 || true
  rm -rf "$state" "$(dirname "$bin")"
}
trap cleanup EXIT

"$bin" up "${L[@]}"
host="$lab-host"
url="http://192.168.77.3:8088"
ok=$(ip netns exec "$host" curl -s -m 5 -w ' %{http_code}' "$url/foo/bar?user=john&password=password")
[[ "$ok" == "hello john!"$'\n'" 200" ]] || { echo "smoke: valid login answered: $ok" >&2; exit 1; }
bad=$(ip netns exec "$host" curl -s -m 5 -w ' %{http_code}' "$url/foo/bar?user=john&password=passwor")
[[ "$bad" == "Invalid login"$'\n'" 401" ]] || { echo "smoke: wrong password answered: $bad" >&2; exit 1; }
"$bin" check "${L[@]}"
"$bin" provision "${L[@]}" --json | grep -q '"changed": false'
"$bin" down "${L[@]}"

left=$(ip netns list | awk '{print $1}' | grep -E "^${lab}-" || true)
[[ -z "$left" ]] || { echo "smoke: namespaces left: $left" >&2; exit 1; }
if pgrep -f "$state/" >/dev/null; then echo "smoke: processes left: $(pgrep -af "$state/")" >&2; exit 1; fi
for t in nat filter; do
  if iptables-save -t "$t" 2>/dev/null | grep -q "labctl:$lab"; then echo "smoke: rules of $lab left in $t" >&2; exit 1; fi
done
[[ ! -e "$state/$lab" ]] || { echo "smoke: state left: $(ls -A "$state/$lab")" >&2; exit 1; }
echo "smoke: ok"
