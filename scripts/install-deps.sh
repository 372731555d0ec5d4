#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages labctl needs on a machine with Go.
#   --test  also the tools the test suite uses
set -euo pipefail
pkgs=(dnsmasq-base dnsmasq-utils iptables nftables iproute2 procps curl ca-certificates graphviz)
if [[ "${1:-}" == "--test" ]]; then
  # busybox: udhcpc as a throwaway DHCP client; the OCaml packages run the
  # unikernel's pure request logic against the shared vectors (dune test).
  # chromium, fonts-dejavu-core: the graph test renders labctl's HTML page
  # headless and looks at the screenshot.
  pkgs+=(busybox openssh-server openssh-client shellcheck vagrant chromium fonts-dejavu-core
    ocaml-nox ocaml-dune libalcotest-ocaml-dev libpbkdf-ocaml-dev libeqaf-ocaml-dev libcstruct-ocaml-dev)
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null
fi
# Debian keeps these in /usr/sbin, which a non-login root shell may lack.
export PATH="$PATH:/usr/sbin:/sbin"
for t in ip iptables iptables-save iptables-restore dnsmasq; do
  command -v "$t" >/dev/null || { echo "install-deps: $t still missing" >&2; exit 1; }
done
