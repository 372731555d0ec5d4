#!/usr/bin/env bash
# Runs `labctl provision` on every boot. On the first, it writes the lab
# spec for this VM: the uplink is the NIC with adapter 2's MAC (Vagrant
# does not configure it: labctl makes it a port of br0 and gives br0 the
# address), and the addresses come from the Vagrantfile; the xen section
# names the opam root and switch scripts/install-toolchain.sh made, since
# the agent runs under sudo's secure_path where no login profile puts
# mirage on PATH.
set -euo pipefail

: "${LABCTL_DOM0_CIDR:?}" "${LABCTL_HOST_CIDR:?}" "${LABCTL_DHCP_START:?}" "${LABCTL_DHCP_END:?}" "${LABCTL_UPLINK_MAC:?}"
: "${OPAMROOT:?set by the Vagrantfile from scripts/versions.env}" "${OPAM_SWITCH:?set by the Vagrantfile from scripts/versions.env}"
spec=${LABCTL_SPEC:-/etc/labctl/lab.yaml}
labctl=${LABCTL_INSTALL_PATH:-/usr/local/bin/labctl}
die() { echo "labctl-provision: $*" >&2; exit 1; }

if [[ ! -f "$spec" ]]; then
	mac=${LABCTL_UPLINK_MAC,,}
	uplink=""
	for dev in /sys/class/net/*; do
		if [[ -f "$dev/address" && "$(cat "$dev/address")" == "$mac" ]]; then
			uplink=${dev##*/}
		fi
	done
	[[ -n "$uplink" ]] || die "no interface has MAC $mac (VirtualBox adapter 2)"
	install -d -m 0700 "$(dirname "$spec")"
	umask 077
	cat > "$spec.new" <<SPEC
# Written on first boot by labctl's Vagrant provisioning
# (scripts/labctl-provision.sh); edit freely, it is not rewritten.
network:
  uplink: $uplink
  address: $LABCTL_DOM0_CIDR
  host_address: $LABCTL_HOST_CIDR
  dhcp:
    start: $LABCTL_DHCP_START
    end: $LABCTL_DHCP_END
guests:
  runtime: xen
xen:
  opam_root: $OPAMROOT
  opam_switch: $OPAM_SWITCH
SPEC
	mv -f "$spec.new" "$spec"
	echo "labctl-provision: wrote $spec (uplink $uplink)"
fi
exec "$labctl" --file "$spec" provision --target local
