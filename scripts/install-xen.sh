#!/usr/bin/env bash
# Installs Xen and the packages labctl drives in dom0, makes GRUB boot Xen
# by default and caps dom0's memory. The Vagrantfile reboots the VM into
# Xen right after (shell provisioner, reboot: true). Safe to run twice.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Run by hand from a checkout: take the pins from versions.env.
if [[ -z "${XEN_PACKAGE:-}" && -f "$here/versions.env" ]]; then
	# shellcheck source=versions.env
	. "$here/versions.env"
fi
: "${XEN_PACKAGE:?set by the Vagrantfile from scripts/versions.env}"
: "${XEN_DEPEXTS:?set by the Vagrantfile from scripts/versions.env}"
: "${LABCTL_DOM0_MEMORY:?dom0 memory in MiB, set by the Vagrantfile}"

die() { echo "install-xen: $*" >&2; exit 1; }

[[ "$LABCTL_DOM0_MEMORY" =~ ^[0-9]+$ ]] || die "LABCTL_DOM0_MEMORY=$LABCTL_DOM0_MEMORY: want MiB as a number"
(( LABCTL_DOM0_MEMORY >= 512 )) || die "LABCTL_DOM0_MEMORY=$LABCTL_DOM0_MEMORY MiB is too small for dom0"

export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# dnsmasq-base: the binary without the system service, which would fight
# labctl's own dnsmasq on br0. opam, build tools and bubblewrap (opam's
# sandbox) for the Mirage toolchain. XEN_DEPEXTS: the xen target's system
# packages, installed here because opam answers "no" to installing system
# packages when it has no tty (opam 2.1.2 opamConsole.ml confirm) and
# labctl's agent builds without one; solo5 needs conf-pkg-config,
# conf-libseccomp (libseccomp-dev) and linux-libc-dev (opam-repository
# packages/solo5/solo5.0.10.1, conf-libseccomp.1). labctl's preflight checks
# the same in dom0 (vmctl/xen checkDepexts), doctor the pin before vagrant up.
IFS=', ' read -r -a depexts <<<"$XEN_DEPEXTS"
apt-get install -y -q --no-install-recommends \
	"$XEN_PACKAGE" grub-pc-bin \
	iproute2 iptables dnsmasq-base curl ca-certificates \
	opam build-essential m4 pkg-config git rsync unzip patch bubblewrap \
	"${depexts[@]}"

# Boot Xen by default with dom0's memory fixed (min = max: no ballooning
# out from under the toolchain). Our file sorts after Debian's xen.cfg, so
# it wins.
cfg=/etc/default/grub.d/zz-labctl-xen.cfg
mem="${LABCTL_DOM0_MEMORY}M"
write_cfg() {
	{
		echo "# Written by labctl scripts/install-xen.sh: boot Xen, cap dom0's memory."
		echo "GRUB_CMDLINE_XEN_DEFAULT=\"dom0_mem=${mem},max:${mem}\""
		if [[ -n "${1:-}" ]]; then
			echo "GRUB_DEFAULT=\"$1\""
		fi
	} > "$cfg.new"
	mv -f "$cfg.new" "$cfg"
}
write_cfg ""
update-grub
# The Xen entry's title depends on the distribution ("Debian GNU/Linux,
# with Xen hypervisor"): take it from the generated menu.
title=$(awk -F"'" '/^menuentry .*with Xen hypervisor/ { print $2; exit }' /boot/grub/grub.cfg)
[[ -n "$title" ]] || die "update-grub generated no Xen menu entry; is $XEN_PACKAGE installed?"
write_cfg "$title"
update-grub
grep -qF "set default=\"$title\"" /boot/grub/grub.cfg || die "GRUB's default is not \"$title\""
grep -qF "dom0_mem=${mem},max:${mem}" /boot/grub/grub.cfg || die "dom0_mem=${mem} missing from /boot/grub/grub.cfg"

# With dom0's memory fixed, xl must not balloon dom0 down to make room.
xlconf=/etc/xen/xl.conf
if [[ -f "$xlconf" ]]; then
	if grep -qE '^#?[[:space:]]*autoballoon[[:space:]]*=' "$xlconf"; then
		sed -i -E 's/^#?[[:space:]]*autoballoon[[:space:]]*=.*/autoballoon="off"/' "$xlconf"
	else
		echo 'autoballoon="off"' >> "$xlconf"
	fi
fi
echo "install-xen: GRUB boots \"$title\" with dom0_mem=${mem}; rebooting into Xen"
