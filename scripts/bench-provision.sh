#!/usr/bin/env bash
# Provision and teardown benchmark on the simulated lab, against a shell
# peer: the article's dom0 set-up written the way a provisioning script
# does it (one ip/sysctl/iptables command per change, dnsmasq started from
# a config file) reaching the same end state as `labctl provision` —
# bridge, uplink enslaved, address moved, promiscuous uplink, forwarding,
# the same NAT and FORWARD rules, dnsmasq on the bridge — and its undo.
# Rounds are interleaved (labctl provision, labctl teardown, peer up, peer
# down), each on a dom0 that the previous step left pristine; one line per
# figure, medians over the rounds, then the ratios issue 13 names.
#   scripts/bench-provision.sh [ROUNDS]          (default 15)
#   scripts/bench-provision.sh --guests N [ROUNDS]  also times the teardown
#                                                of a lab with N guests
#                                                (default ROUNDS 5)
# Traffic stays inside the lab's namespaces. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin:/usr/local/go/bin"
[[ $(id -u) -eq 0 ]] || { echo "bench-provision: run as root" >&2; exit 1; }

guests=0
if [[ ${1:-} == --guests ]]; then
	guests=${2:?--guests N}
	shift 2
	rounds=${1:-5}
else
	rounds=${1:-15}
fi

bin=$(mktemp -d)
state=$(mktemp -d)
chmod 711 "$state"
lab="bp$$"
dom0="$lab-dom0"
spec="$bin/lab.yaml"
cleanup() {
	ip netns exec "$dom0" bash "$bin/peer.sh" down >/dev/null 2>&1 || true
	"$bin/labctl" down --target sim --lab "$lab" --state-dir "$state" >/dev/null 2>&1 || true
	rm -rf "$bin" "$state"
}
trap cleanup EXIT
CGO_ENABLED=0 go build -o "$bin/labctl" ./cmd/labctl
CGO_ENABLED=0 go build -o "$bin/labctl-guest" ./cmd/labctl-guest
printf 'users:\n  iterations: 1000\nnetwork:\n  dhcp:\n    start: 192.168.77.3\n    end: 192.168.77.254\n' >"$spec"
L=(--target sim --lab "$lab" --state-dir "$state" -f "$spec")
"$bin/labctl" sim up --lab "$lab" --state-dir "$state" >/dev/null 2>&1

# The peer. Same subnet, bridge, uplink and rules as the spec above
# (netsetup/testdata/rules-cold.restore); its dnsmasq serves the same
# range on the bridge from a directory of its own.
peerdir="$bin/peer"
mkdir -p "$peerdir"
chmod 755 "$bin" "$peerdir"
cat >"$bin/peer.sh" <<PEER
#!/usr/bin/env bash
set -euo pipefail
c=(-m comment --comment "peer:$lab")
case \$1 in
up)
	ip link add br0 type bridge
	ip link set br0 up
	ip link set eth1 master br0
	ip addr del 192.168.77.2/24 dev eth1
	ip addr add 192.168.77.2/24 dev br0
	ip link set eth1 promisc on
	sysctl -qw net.ipv4.ip_forward=1
	iptables -t nat -N PEER-POST
	iptables -t nat -A PEER-POST -s 192.168.77.0/24 -d 224.0.0.0/24 "\${c[@]}" -j RETURN
	iptables -t nat -A PEER-POST -s 192.168.77.0/24 -d 255.255.255.255/32 "\${c[@]}" -j RETURN
	iptables -t nat -A PEER-POST -s 192.168.77.0/24 ! -d 192.168.77.0/24 "\${c[@]}" -j MASQUERADE
	iptables -t nat -I POSTROUTING 1 "\${c[@]}" -j PEER-POST
	iptables -N PEER-FWD
	iptables -A PEER-FWD -i br0 "\${c[@]}" -j ACCEPT
	iptables -A PEER-FWD -o br0 -m conntrack --ctstate RELATED,ESTABLISHED "\${c[@]}" -j ACCEPT
	iptables -I FORWARD 1 "\${c[@]}" -j PEER-FWD
	cat >$peerdir/dnsmasq.conf <<CONF
interface=br0
except-interface=lo
bind-dynamic
no-resolv
no-hosts
dhcp-range=192.168.77.3,192.168.77.200,255.255.255.0,3600
dhcp-option=option:router,192.168.77.2
dhcp-authoritative
dhcp-leasefile=$peerdir/dnsmasq.leases
pid-file=$peerdir/dnsmasq.pid
CONF
	dnsmasq --conf-file=$peerdir/dnsmasq.conf
	;;
down)
	if [[ -f $peerdir/dnsmasq.pid ]]; then
		pid=\$(cat $peerdir/dnsmasq.pid)
		kill "\$pid" 2>/dev/null || true
		# Gone or a zombie (its reaper is init: kill -0 would wait for it).
		while st=\$(cut -d' ' -f3 /proc/\$pid/stat 2>/dev/null) && [[ \$st != Z ]]; do sleep 0.005; done
		rm -f $peerdir/dnsmasq.pid
	fi
	iptables -D FORWARD "\${c[@]}" -j PEER-FWD 2>/dev/null || true
	iptables -F PEER-FWD 2>/dev/null || true
	iptables -X PEER-FWD 2>/dev/null || true
	iptables -t nat -D POSTROUTING "\${c[@]}" -j PEER-POST 2>/dev/null || true
	iptables -t nat -F PEER-POST 2>/dev/null || true
	iptables -t nat -X PEER-POST 2>/dev/null || true
	nft delete table ip nat 2>/dev/null || true
	nft delete table ip filter 2>/dev/null || true
	sysctl -qw net.ipv4.ip_forward=0
	ip link set eth1 promisc off 2>/dev/null || true
	ip addr del 192.168.77.2/24 dev br0 2>/dev/null || true
	ip addr add 192.168.77.2/24 dev eth1 2>/dev/null || true
	ip link set eth1 nomaster 2>/dev/null || true
	ip link del br0 2>/dev/null || true
	;;
esac
PEER

now_us() { date +%s%6N; }
# timed NAME CMD...: runs CMD, appends its wall time (µs) to $bin/NAME.
timed() {
	local name=$1 s
	shift
	s=$(now_us)
	"$@" >"$bin/out" 2>&1 || { echo "bench-provision: $name failed:" >&2; cat "$bin/out" >&2; exit 1; }
	echo $(($(now_us) - s)) >>"$bin/$name"
}
median_ms() { sort -n "$bin/$1" | awk '{a[NR]=$1} END {m = NR % 2 ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2; printf "%.1f", m / 1000}'; }
range_ms() { sort -n "$bin/$1" | awk 'NR==1 {lo=$1} {hi=$1} END {printf "%.1f–%.1f", lo/1000, hi/1000}'; }

for ((i = 0; i < rounds; i++)); do
	timed provision "$bin/labctl" provision "${L[@]}"
	if ((guests > 0)); then
		"$bin/labctl" deploy "${L[@]}" --replicas "$guests" >"$bin/out" 2>&1 || { cat "$bin/out" >&2; exit 1; }
	fi
	timed teardown "$bin/labctl" teardown "${L[@]}"
	timed peer_up ip netns exec "$dom0" bash "$bin/peer.sh" up
	timed peer_down ip netns exec "$dom0" bash "$bin/peer.sh" down
	# The kernel's floor under any teardown: an empty bridge's add and
	# delete, against the same two `ip` execs doing nothing.
	timed bridge ip netns exec "$dom0" sh -c 'ip link add brbench type bridge; ip link del brbench'
	timed ip_execs ip netns exec "$dom0" sh -c 'ip link show lo >/dev/null; ip link show lo >/dev/null'
done

echo "rounds $rounds, guests per teardown $guests ($(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))"
for f in provision teardown peer_up peer_down bridge ip_execs; do
	printf '%-10s median %7s ms  (%s ms)\n' "$f" "$(median_ms $f)" "$(range_ms $f)"
done
if ((guests > 0)); then
	# The ratios compare like with like: the peer has no guests to stop.
	echo "teardown of $guests guests and the network: median $(median_ms teardown) ms"
	awk -v p="$(median_ms provision)" -v u="$(median_ms peer_up)" 'BEGIN { printf "provision / peer up       %.2fx\n", p / u }'
else
	awk -v p="$(median_ms provision)" -v t="$(median_ms teardown)" -v u="$(median_ms peer_up)" -v d="$(median_ms peer_down)" 'BEGIN {
		printf "teardown / provision      %.2fx\n", t / p
		printf "provision / peer up       %.2fx\n", p / u
		printf "teardown / peer down      %.2fx\n", t / d
	}'
fi
awk -v b="$(median_ms bridge)" -v e="$(median_ms ip_execs)" 'BEGIN { printf "bridge add+delete in the kernel (bridge - ip_execs)  %.1f ms\n", b - e }'
