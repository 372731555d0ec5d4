#!/usr/bin/env bash
# Installs the labctl the Vagrantfile built on the host (linux/amd64) and
# uploaded with the file provisioner, as /usr/local/bin/labctl.
set -euo pipefail

upload=${LABCTL_UPLOAD_DIR:-/tmp/labctl-upload}
dest=${LABCTL_INSTALL_PATH:-/usr/local/bin/labctl}
die() { echo "install-labctl: $*" >&2; exit 1; }

# Vagrant copies a directory as the destination when it does not exist
# yet, and into it (as .build/) when it does.
src=""
for c in "$upload/labctl" "$upload/.build/labctl"; do
	if [[ -f "$c" ]]; then src=$c; break; fi
done
[[ -n "$src" ]] || die "no labctl uploaded under $upload: did the host build fail?"
[[ "$(head -c 4 "$src" | od -An -tx1 | tr -d ' \n')" == "7f454c46" ]] || die "$src is not an ELF executable"

install -m 0755 -o root -g root "$src" "$dest.new"
mv -f "$dest.new" "$dest"
rm -rf "$upload"
"$dest" --help >/dev/null || die "$dest does not run"
echo "install-labctl: installed $dest ($(sha256sum "$dest" | cut -d' ' -f1))"
