#!/usr/bin/env bash
# peersock set-up for a fresh Debian 12 machine. Idempotent: every step checks
# whether its work is already done and skips it.
#
#   scripts/setup.sh            install deps, build OpenSSL 3.5 (cached), build peersock
#   scripts/setup.sh --deps     only dependencies (apt + OpenSSL)
#
# Environment:
#   PEERSOCK_CACHE   where the OpenSSL build is cached (default /var/cache/peersock,
#                    or ~/.cache/peersock when not root). Outside the clone on purpose:
#                    a fresh clone reuses it.
#   BUILD_DIR        meson build directory (default: build)
set -euo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

log() { printf 'setup: %s\n' "$*" >&2; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

if [ -z "${PEERSOCK_CACHE:-}" ]; then
  if [ "$(id -u)" = 0 ]; then PEERSOCK_CACHE=/var/cache/peersock; else PEERSOCK_CACHE="$HOME/.cache/peersock"; fi
fi
export DEBIAN_FRONTEND=noninteractive

packages=(
  build-essential pkg-config meson ninja-build git ca-certificates dpkg-dev
  libnice-dev libglib2.0-dev libsoup-3.0-dev libotr5-dev libgcrypt20-dev
  nlohmann-json3-dev libfmt-dev googletest libgtest-dev
  python3-magic-wormhole-mailbox-server python3-mnemonic python3-websocket
  coturn iproute2 nftables iptables openssh-server openssh-client socat
  procps psmisc tmux clang libclang-rt-14-dev
  zsh groff-base
  python3-pytest
  libnetfilter-queue-dev
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

src_list=/etc/apt/sources.list.d/peersock-trixie-src.sources
need_update=0
if [ ! -f "$src_list" ]; then
  # SOURCE-only entry: never a binary 'deb' line for trixie, which would let apt
  # upgrade this Debian 12 system to Debian 13 packages.
  log "adding Debian 13 (trixie) as a deb-src-only apt source"
  $SUDO tee "$src_list" >/dev/null <<'SRC'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  need_update=1
fi

if [ ${#missing[@]} -gt 0 ] || [ $need_update = 1 ]; then
  log "apt-get update"
  $SUDO apt-get update -qq
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "installing: ${missing[*]}"
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # coturn and sshd must not run as system services: tests start their own.
  for svc in coturn ssh; do
    if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || true; fi
  done
fi

# ---- OpenSSL 3.5 from Debian 13's source package, static, cached ----------
ossl_version=$(apt-cache showsrc openssl 2>/dev/null | awk '/^Version: 3\.[5-9]/ {print $2; exit}')
if [ -z "$ossl_version" ]; then
  log "apt-get update (no trixie openssl source known yet)"
  $SUDO apt-get update -qq
  ossl_version=$(apt-cache showsrc openssl | awk '/^Version: 3\.[5-9]/ {print $2; exit}')
fi
[ -n "$ossl_version" ] || { log "error: no openssl >= 3.5 source package found in the trixie deb-src entry"; exit 1; }
prefix="$PEERSOCK_CACHE/openssl-$ossl_version"
if [ ! -f "$prefix/.complete" ]; then
  log "building OpenSSL $ossl_version into $prefix (takes a few minutes, once)"
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  (cd "$work" && apt-get source -qq --download-only "openssl=$ossl_version" >/dev/null && dpkg-source -x --skip-patches openssl_*.dsc src >/dev/null 2>&1 || dpkg-source -x openssl_*.dsc src >/dev/null)
  mkdir -p "$prefix"
  (cd "$work/src" && ./Configure no-docs no-tests no-shared no-apps --prefix="$prefix" --libdir=lib >/dev/null \
     && make -s -j"$(nproc)" build_libs >/dev/null && make -s install_dev >/dev/null)
  # Keep the QUIC guide next to the build for developers.
  mkdir -p "$prefix/guide"
  cp "$work/src"/doc/man7/ossl-guide-quic-*.pod "$work/src"/doc/man7/openssl-quic*.pod "$prefix/guide/" 2>/dev/null || true
  cp "$work/src"/demos/guide/quic-*.c "$prefix/guide/" 2>/dev/null || true
  touch "$prefix/.complete"
  rm -rf "$work"; trap - EXIT
fi
ln -sfn "$prefix" "$PEERSOCK_CACHE/openssl-current"
log "OpenSSL $ossl_version at $prefix"

[ "${1:-}" = "--deps" ] && exit 0

# ---- peersock -----------------------------------------------------------
BUILD_DIR=${BUILD_DIR:-build}
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  meson setup "$BUILD_DIR" -Dopenssl_prefix="$prefix" ${MESON_ARGS:-} >/dev/null
else
  meson configure "$BUILD_DIR" -Dopenssl_prefix="$prefix" >/dev/null
fi
ninja -C "$BUILD_DIR" >&2
