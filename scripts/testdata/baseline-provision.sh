# The lab's cold provision as plain commands, run inside dom0:
# sh baseline-provision.sh STATE_DIR
# What a person (or the article's Vagrant recipe) would write; its
# preflight is labctl's (uplink present, subnet free, the tools' versions);
# nothing is verified after. BenchmarkProvisionShellBaseline and
# scripts/bench-cli.sh time it against labctl provision (issue 13).
set -e
ip -o link show eth1 >/dev/null
if ip -o -4 addr show | grep -v ' eth1 ' | grep -q ' inet 192\.168\.77\.'; then exit 1; fi
dnsmasq --version | head -n 1
iptables --version
mac=$(ip -o link show eth1 | sed 's/.*link\/ether \([^ ]*\).*/\1/')
ip link add br0 type bridge
ip link set br0 address "$mac"
ip link set br0 up
ip link set eth1 master br0
ip addr add 192.168.77.2/24 dev br0
ip addr del 192.168.77.2/24 dev eth1
ip link set eth1 promisc on
sysctl -qw net.ipv4.ip_forward=1
iptables -t nat -N LABCTL-POST
iptables -t nat -A LABCTL-POST -s 192.168.77.0/24 -d 224.0.0.0/24 -m comment --comment labctl:b -j RETURN
iptables -t nat -A LABCTL-POST -s 192.168.77.0/24 -d 255.255.255.255/32 -m comment --comment labctl:b -j RETURN
iptables -t nat -A LABCTL-POST -s 192.168.77.0/24 ! -d 192.168.77.0/24 -m comment --comment labctl:b -j MASQUERADE
iptables -t nat -I POSTROUTING 1 -m comment --comment labctl:b -j LABCTL-POST
iptables -N LABCTL-FWD
iptables -A LABCTL-FWD -i br0 -m comment --comment labctl:b -j ACCEPT
iptables -A LABCTL-FWD -o br0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment labctl:b -j ACCEPT
iptables -I FORWARD 1 -m comment --comment labctl:b -j LABCTL-FWD
mkdir -p "$1"
cat > "$1/dnsmasq.conf" <<EOC
interface=br0
except-interface=lo
bind-dynamic
no-resolv
dhcp-range=192.168.77.3,192.168.77.200,255.255.255.0,3600
dhcp-leasefile=$1/leases
pid-file=$1/pid
EOC
dnsmasq --conf-file="$1/dnsmasq.conf"
