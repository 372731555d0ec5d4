#!/usr/bin/env bash
# Scale benchmark on the simulated lab: for each N, the time from no
# guests to N healthy guests (deploy --replicas N, which waits for every
# lease and probe), the per-guest slope against N=1, labctl's peak RSS
# and open fds during that deploy, then the teardown of the N guests
# (deploy --replicas 1 prunes them) — one line per N.
#   scripts/bench-scale.sh [N...]            (default: 1 10 50 100 250)
#   scripts/bench-scale.sh --stress RUNS N   RUNS deploys of N guests, each
#                                            beside two CPU hogs (yes > /dev/null)
#                                            bounded by the run; prints failures
# Traffic stays inside the lab's namespaces. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"
[[ $(id -u) -eq 0 ]] || { echo "bench-scale: run as root" >&2; exit 1; }

bin=$(mktemp -d)
state=$(mktemp -d)
chmod 711 "$state"
lab="bs$$"
spec="$bin/lab.yaml"
hogs=()
cleanup() {
	for h in "${hogs[@]}"; do kill "$h" 2>/dev/null || true; done
	"$bin/labctl" down --target sim --lab "$lab" --state-dir "$state" >/dev/null 2>&1 || true
	rm -rf "$bin" "$state"
}
trap cleanup EXIT
CGO_ENABLED=0 go build -o "$bin/labctl" ./cmd/labctl
CGO_ENABLED=0 go build -o "$bin/labctl-guest" ./cmd/labctl-guest
# Cheap hashing: this times labctl and the lab, not PBKDF2. A /24's worth
# of DHCP range so 250 guests fit.
printf 'users:\n  iterations: 1000\nnetwork:\n  dhcp:\n    start: 192.168.77.3\n    end: 192.168.77.254\n' > "$spec"
L=(--target sim --lab "$lab" --state-dir "$state" -f "$spec")
"$bin/labctl" sim up --lab "$lab" --state-dir "$state" >/dev/null 2>&1
"$bin/labctl" provision "${L[@]}" >/dev/null 2>&1

now_ms() { date +%s%3N; }

# peak_of PID: VmHWM (kB) and open fds of PID.
peak_of() {
	local r f
	# The process may be gone at any point: that is 0, not an error.
	r=$(awk '/^VmHWM:/ {print $2}' "/proc/$1/status" 2>/dev/null) || r=0
	f=$( (find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null || true) | wc -l)
	echo "${r:-0} ${f:-0}"
}

# deploy_n N: runs deploy --replicas N, sampling the RSS and fds of labctl
# (the CLI) and of its agent (the labctl it runs in dom0's namespace, where
# the guests are started and waited for); sets ms, rss_kb, fds, agent_rss_kb,
# agent_fds, rc, failed (guest steps that failed).
deploy_n() {
	local n=$1 start pid
	start=$(now_ms)
	"$bin/labctl" deploy "${L[@]}" --replicas "$n" >"$bin/out" 2>&1 &
	pid=$!
	rss_kb=0 fds=0 agent_rss_kb=0 agent_fds=0
	while kill -0 "$pid" 2>/dev/null; do
		local r f a
		read -r r f < <(peak_of "$pid") || continue
		((r > rss_kb)) && rss_kb=$r
		((f > fds)) && fds=$f
		for a in $(pgrep -P "$pid" -x labctl || true); do
			read -r r f < <(peak_of "$a") || continue
			((r > agent_rss_kb)) && agent_rss_kb=$r
			((f > agent_fds)) && agent_fds=$f
		done
		sleep 0.02
	done
	rc=0
	wait "$pid" || rc=$?
	ms=$(($(now_ms) - start))
	failed=$(grep -c '^failed *guest' "$bin/out" || true)
}

# reset: back to no guests (scale to 1, destroy it).
reset() {
	"$bin/labctl" deploy "${L[@]}" --replicas 1 >/dev/null 2>&1 || true
	"$bin/labctl" destroy auth-1 "${L[@]}" >/dev/null 2>&1 || true
}

if [[ "${1:-}" == --stress ]]; then
	runs=${2:-10} n=${3:-100} bad=0
	for ((i = 1; i <= runs; i++)); do
		reset
		# Two CPU hogs for exactly this run's deploy, killed after it.
		yes >/dev/null &
		hogs+=($!)
		yes >/dev/null &
		hogs+=($!)
		deploy_n "$n"
		load=$(cut -d' ' -f1 /proc/loadavg)
		kill "${hogs[@]}" 2>/dev/null || true
		wait "${hogs[@]}" 2>/dev/null || true
		hogs=()
		if ((rc != 0)); then
			bad=$((bad + 1))
			echo "run $i/$runs N=$n: FAILED after ${ms} ms (load $load, $failed guests failed): $(tail -1 "$bin/out")"
		else
			echo "run $i/$runs N=$n: healthy in ${ms} ms (load $load)"
		fi
	done
	echo "stress: $((runs - bad)) of $runs runs at N=$n succeeded beside two CPU hogs"
	exit $((bad > 0))
fi

ns=("$@")
((${#ns[@]})) || ns=(1 10 50 100 250)
base="" base_n=""
echo "# ms: deploy --replicas N from no guests to all healthy (dom0 and host probes); slope: (ms - ms at the first N) / (N - first N)"
for n in "${ns[@]}"; do
	reset
	deploy_n "$n"
	status=ok
	((rc == 0)) || status="FAILED: $(tail -1 "$bin/out")"
	[[ -n "$base" ]] || base=$ms base_n=$n
	slope="-"
	((n > base_n)) && slope=$(((ms - base) / (n - base_n)))
	td_start=$(now_ms)
	"$bin/labctl" deploy "${L[@]}" --replicas 1 >/dev/null 2>&1 || true
	td=$(($(now_ms) - td_start))
	echo "N=$n healthy_ms=$ms slope_ms_per_guest=$slope labctl_peak_rss_kb=$rss_kb labctl_peak_fds=$fds agent_peak_rss_kb=$agent_rss_kb agent_peak_fds=$agent_fds failures=$failed scale_down_to_1_ms=$td $status"
done
