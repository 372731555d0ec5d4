#!/usr/bin/env bash
# Installs the MirageOS toolchain with opam as root into OPAMROOT (the
# labctl agent runs as root and builds unikernels there): OCaml
# OCAML_VERSION in switch OPAM_SWITCH, mirage MIRAGE_VERSION. Safe to run
# twice; it checks every installed version against the pins.
# shellcheck source-path=SCRIPTDIR
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z "${OCAML_VERSION:-}" && -f "$here/versions.env" ]]; then
	# shellcheck source=versions.env
	. "$here/versions.env"
fi
: "${OPAM_MIN_VERSION:?}" "${OCAML_VERSION:?}" "${MIRAGE_VERSION:?}" "${OPAMROOT:?}" "${OPAM_SWITCH:?}"
export OPAMROOT
# A disposable lab VM: opam's "running as root" question has one answer.
export OPAMROOTISOK=1 OPAMYES=1 OPAMCOLOR=never

die() { echo "install-toolchain: $*" >&2; exit 1; }
version_ge() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]; }

command -v opam >/dev/null || die "opam is not installed (scripts/install-xen.sh installs it)"
opam_version=$(opam --version)
version_ge "$opam_version" "$OPAM_MIN_VERSION" || die "opam $opam_version is older than $OPAM_MIN_VERSION"

if [[ ! -f "$OPAMROOT/config" ]]; then
	mkdir -p "$(dirname "$OPAMROOT")"
	opam init --bare --no-setup --disable-completion
fi
if ! opam switch list --short | grep -qxF "$OPAM_SWITCH"; then
	opam switch create "$OPAM_SWITCH" "ocaml-base-compiler.$OCAML_VERSION"
fi
have=$(opam exec --switch "$OPAM_SWITCH" -- ocamlc -version)
[[ "$have" == "$OCAML_VERSION" ]] ||
	die "switch $OPAM_SWITCH has OCaml $have, not $OCAML_VERSION; fix: OPAMROOT=$OPAMROOT opam switch remove $OPAM_SWITCH, then provision again"

opam install --switch "$OPAM_SWITCH" "mirage.$MIRAGE_VERSION"
have=$(opam exec --switch "$OPAM_SWITCH" -- mirage --version)
[[ "$have" == "$MIRAGE_VERSION" ]] || die "mirage --version says $have, not $MIRAGE_VERSION"

# The contract labctl relies on (provision/xentoolchain.go): with only
# what `sudo -n` leaves (secure_path, no login profile), `opam exec --root
# --switch --set-root --set-switch` finds mirage, and an opam run inside it
# (as mirage's Makefile runs `opam install` and `opam monorepo`) sees the
# same root and switch.
secure_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
inner=$(env -i HOME=/root PATH="$secure_path" opam exec --root "$OPAMROOT" --switch "$OPAM_SWITCH" --set-root --set-switch -- \
	sh -c 'command -v mirage >/dev/null && opam switch show') ||
	die "opam exec --root $OPAMROOT --switch $OPAM_SWITCH --set-root --set-switch does not reach mirage and the switch with sudo's environment"
[[ "$inner" == "$OPAM_SWITCH" ]] || die "an opam inside opam exec sees switch '$inner', not $OPAM_SWITCH"

# Login shells (vagrant ssh, then sudo -i) get the toolchain too.
cat > /etc/profile.d/labctl-opam.sh.new <<PROFILE
# Written by labctl scripts/install-toolchain.sh.
export OPAMROOT=$OPAMROOT
if [ "\$(id -u)" = 0 ] && command -v opam >/dev/null; then
	eval "\$(opam env --switch=$OPAM_SWITCH --set-switch)"
fi
PROFILE
mv -f /etc/profile.d/labctl-opam.sh.new /etc/profile.d/labctl-opam.sh
echo "install-toolchain: opam $opam_version, OCaml $OCAML_VERSION, mirage $MIRAGE_VERSION in $OPAMROOT (switch $OPAM_SWITCH)"
