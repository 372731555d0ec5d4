# baseline-provision.sh written the way a host-side tool reaches a
# namespace (as labctl provision --target sim does): ip -n for links,
# ip netns exec for the rest. sh baseline-provision-from-host.sh STATE_DIR DOM0_NETNS
set -e
n=$2
ip -n "$n" -o link show eth1 >/dev/null
if ip -n "$n" -o -4 addr show | grep -v ' eth1 ' | grep -q ' inet 192\.168\.77\.'; then exit 1; fi
ip netns exec "$n" dnsmasq --version | head -n 1
ip netns exec "$n" iptables --version
mac=$(ip -n "$n" -o link show eth1 | sed 's/.*link\/ether \([^ ]*\).*/\1/')
ip -n "$n" link add br0 type bridge
ip -n "$n" link set br0 address "$mac"
ip -n "$n" link set br0 up
ip -n "$n" link set eth1 master br0
ip -n "$n" addr add 192.168.77.2/24 dev br0
ip -n "$n" addr del 192.168.77.2/24 dev eth1
ip -n "$n" link set eth1 promisc on
ip netns exec "$n" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$n" iptables -t nat -N LABCTL-POST
ip netns exec "$n" iptables -t nat -A LABCTL-POST -s 192.168.77.0/24 -d 224.0.0.0/24 -m comment --comment labctl:b -j RETURN
ip netns exec "$n" iptables -t nat -A LABCTL-POST -s 192.168.77.0/24 -d 255.255.255.255/32 -m comment --comment labctl:b -j RETURN
ip netns exec "$n" iptables -t nat -A LABCTL-POST -s 192.168.77.0/24 ! -d 192.168.77.0/24 -m comment --comment labctl:b -j MASQUERADE
ip netns exec "$n" iptables -t nat -I POSTROUTING 1 -m comment --comment labctl:b -j LABCTL-POST
ip netns exec "$n" iptables -N LABCTL-FWD
ip netns exec "$n" iptables -A LABCTL-FWD -i br0 -m comment --comment labctl:b -j ACCEPT
ip netns exec "$n" iptables -A LABCTL-FWD -o br0 -m conntrack --ctstate RELATED,ESTABLISHED -m comment --comment labctl:b -j ACCEPT
ip netns exec "$n" iptables -I FORWARD 1 -m comment --comment labctl:b -j LABCTL-FWD
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
ip netns exec "$n" dnsmasq --conf-file="$1/dnsmasq.conf"
