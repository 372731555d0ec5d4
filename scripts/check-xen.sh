#!/usr/bin/env bash
# Runs on every boot: stops provisioning when the VM did not come up as
# Xen's dom0, and warns when Xen cannot run PVH guests (no nested VT-x).
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z "${XEN_MIN_VERSION:-}" && -f "$here/versions.env" ]]; then
	# shellcheck source=versions.env
	. "$here/versions.env"
fi
: "${XEN_MIN_VERSION:?set by the Vagrantfile from scripts/versions.env}"
vm=${LABCTL_VM_NAME:-labctl-dom0}

info=$(xl info 2>&1) || {
	echo "check-xen: not running as Xen's dom0 (xl info: $info)" >&2
	echo "check-xen: kernel command line: $(cat /proc/cmdline)" >&2
	echo "check-xen: fix: check GRUB_DEFAULT in /etc/default/grub.d/zz-labctl-xen.cfg, run update-grub, then vagrant reload" >&2
	exit 1
}
field() { awk -F': *' -v k="$1" '$1 ~ "^"k"[[:space:]]*$" { print $2; exit }' <<<"$info"; }
major=$(field xen_major)
minor=$(field xen_minor)
caps=$(field virt_caps)
version="${major}.${minor}"
lowest=$(printf '%s\n%s\n' "$XEN_MIN_VERSION" "$version" | sort -V | head -n1)
if [[ -z "$major" || "$lowest" != "$XEN_MIN_VERSION" ]]; then
	echo "check-xen: Xen $version is older than $XEN_MIN_VERSION: Mirage's PVH guests need $XEN_MIN_VERSION or later" >&2
	exit 1
fi
if ! grep -qw hvm <<<"$caps"; then
	# Not fatal: the toolchain and labctl still install, and labctl doctor
	# reports it, but no Mirage guest will boot until it is fixed.
	echo "check-xen: WARNING: Xen's virt_caps ($caps) lack hvm: PVH guests cannot boot." >&2
	echo "check-xen: fix on the host: vagrant halt && VBoxManage modifyvm $vm --nested-hw-virt on && vagrant up" >&2
fi
echo "check-xen: dom0 of Xen $version, virt_caps: $caps"
