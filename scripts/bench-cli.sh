#!/usr/bin/env bash
# The CLI's own speed on the simulated lab, each figure a whole labctl
# process as a user runs it (the static build scripts/up.sh makes):
#   up         `labctl up --target sim` from nothing (no namespaces, no state)
#              to a checked guest, with the spec's defaults: PBKDF2 at
#              600,000 iterations, the quick check (one valid, one invalid
#              credential). UP_RUNS runs (default 5), `labctl down` between.
#   converged  `labctl provision --target sim` on a converged lab ("nothing
#              changed"), RERUNS runs (default 30).
#   side by side, PAIRS rounds (default 15), interleaved so that the
#              machine's drift (the kernel freeing the last round's
#              namespaces, other work) falls on all three alike:
#              cold      `labctl provision --target sim` on a fresh dom0
#              teardown  `labctl teardown --target sim` of that lab
#              shell     scripts/testdata/baseline-provision.sh run in a
#                        fresh dom0 (`ip netns exec <dom0> sh ...`), the
#                        same commands by hand (BenchmarkProvisionShellBaseline)
# Prints every run and the median of each. Issue 13's targets: up ≤ 1 s,
# converged re-run ≤ 30 ms (median of 30), cold ≤ 0.4× shell, teardown ≤
# 1.0× cold.
#   scripts/bench-cli.sh
# Traffic stays inside the lab's namespaces. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"
[[ $(id -u) -eq 0 ]] || { echo "bench-cli: run as root" >&2; exit 1; }

up_runs=${UP_RUNS:-5}
reruns=${RERUNS:-30}
bin=$(mktemp -d)
state=$(mktemp -d)
chmod 711 "$state"
lab="bc$$"
L=(--target sim --lab "$lab" --state-dir "$state")
cleanup() {
	"$bin/labctl" down "${L[@]}" >/dev/null 2>&1 || true
	rm -rf "$bin" "$state"
}
trap cleanup EXIT
CGO_ENABLED=0 go build -o "$bin/labctl" ./cmd/labctl
CGO_ENABLED=0 go build -o "$bin/labctl-guest" ./cmd/labctl-guest

# Times come from $EPOCHREALTIME (bash 5, microseconds without the dot):
# the clock without a process of its own, which would count in a 20 ms figure.
# median: the middle of the numbers on stdin (the lower middle for an even count).
median() { sort -n | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }
# timed CMD...: runs CMD, prints its time in ms (one decimal), fails the
# bench when it fails.
timed() {
	local start us
	start=${EPOCHREALTIME/[.,]/}
	if ! "$@" >"$bin/out" 2>&1; then
		echo "FAILED: $*" >&2
		cat "$bin/out" >&2
		exit 1
	fi
	us=$((${EPOCHREALTIME/[.,]/} - start))
	awk -v u="$us" 'BEGIN {printf "%.1f", u / 1000}'
}
# ratio A B: A / B to three decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", a / b}'; }

ups=()
for ((i = 1; i <= up_runs; i++)); do
	"$bin/labctl" down "${L[@]}" >/dev/null 2>&1
	# The kernel frees the last run's namespaces in a workqueue: let it
	# finish, so the run times itself and not that cleanup.
	sleep 0.5
	ms=$(timed "$bin/labctl" up "${L[@]}")
	ups+=("$ms")
	echo "up run $i: ${ms} ms"
done
echo "up: median $(printf '%s\n' "${ups[@]}" | median) ms of $up_runs (from nothing to checked, default iterations)"

reruns_ms=()
for ((i = 1; i <= reruns; i++)); do
	ms=$(timed "$bin/labctl" provision "${L[@]}")
	grep -q 'nothing changed' "$bin/out" || {
		echo "converged run $i changed something:" >&2
		cat "$bin/out" >&2
		exit 1
	}
	reruns_ms+=("$ms")
done
echo "converged re-run: ${reruns_ms[*]} ms"
echo "converged re-run: median $(printf '%s\n' "${reruns_ms[@]}" | median) ms of $reruns"

# fresh: dom0 as `labctl sim up` makes it, nothing of the lab in it, and
# the kernel done freeing the last round's namespaces.
fresh() {
	"$bin/labctl" down "${L[@]}" >/dev/null 2>&1
	sleep 0.5
	"$bin/labctl" sim up --lab "$lab" --state-dir "$state" >/dev/null 2>&1
	sleep 0.3
}
pairs=${PAIRS:-15}
colds=() teardowns=() shells=() cs=() tc=()
base="$state/baseline"
for ((i = 1; i <= pairs; i++)); do
	fresh
	c=$(timed "$bin/labctl" provision "${L[@]}")
	sleep 0.1
	t=$(timed "$bin/labctl" teardown "${L[@]}")
	fresh
	s=$(timed ip netns exec "$lab-dom0" sh scripts/testdata/baseline-provision.sh "$base")
	# The script's dnsmasq is not labctl's: stop it before the next round.
	kill "$(cat "$base/pid")" 2>/dev/null || true
	colds+=("$c") teardowns+=("$t") shells+=("$s")
	cs+=("$(ratio "$c" "$s")") tc+=("$(ratio "$t" "$c")")
	echo "round $i: cold $c ms, teardown $t ms, shell $s ms"
done
mc=$(printf '%s\n' "${colds[@]}" | median)
mt=$(printf '%s\n' "${teardowns[@]}" | median)
ms=$(printf '%s\n' "${shells[@]}" | median)
# Two ratios each: of the medians, and the median of each round's ratio
# (the round's runs are seconds apart, so the machine's drift cancels).
echo "cold provision: median $mc ms of $pairs; shell script: median $ms ms; cold/shell $(ratio "$mc" "$ms")x, median of rounds $(printf '%s\n' "${cs[@]}" | median)x"
echo "teardown: median $mt ms of $pairs; teardown/cold $(ratio "$mt" "$mc")x, median of rounds $(printf '%s\n' "${tc[@]}" | median)x"
