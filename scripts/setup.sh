#!/usr/bin/env bash
# peersock set-up for a fresh Debian 12 machine. Idempotent: every step checks
# whether its work is already done and skips it.
#
#   scripts/setup.sh            install deps, build OpenSSL 3.5 and ngtcp2 (cached), build peersock
#   scripts/setup.sh --deps     only dependencies (apt + OpenSSL + ngtcp2)
#
# Environment:
#   PEERSOCK_CACHE   where the OpenSSL and ngtcp2 builds are cached (default /var/cache/peersock,
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
  build-essential pkg-config meson ninja-build cmake git ca-certificates dpkg-dev
  # libotr5-dev, libgcrypt20-dev: only test_auth's reference SMP (the product does SMP on OpenSSL)
  libnice-dev libglib2.0-dev libsoup-3.0-dev libotr5-dev libgcrypt20-dev libsodium-dev
  nlohmann-json3-dev libfmt-dev googletest libgtest-dev
  python3-magic-wormhole-mailbox-server python3-mnemonic python3-websocket
  coturn iproute2 nftables iptables openssh-server openssh-client socat
  procps psmisc tmux clang libclang-rt-14-dev curl
  zsh groff-base
  python3-pytest
  libnetfilter-queue-dev conntrack
  wireguard-go wireguard-tools dnsmasq-base bind9-dnsutils iperf3
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

need_update=0
# SOURCE-only entries: never a binary 'deb' line for trixie or sid, which would
# let apt upgrade this Debian 12 system to Debian 13 / unstable packages.
#   trixie: OpenSSL 3.5.   sid: ngtcp2 >= 1.12 (trixie has 1.11, no ngtcp2_crypto_ossl).
for suite in trixie sid; do
  src_list=/etc/apt/sources.list.d/peersock-$suite-src.sources
  [ -f "$src_list" ] && continue
  log "adding Debian $suite as a deb-src-only apt source"
  $SUDO tee "$src_list" >/dev/null <<SRC
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  need_update=1
done

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
# The sid deb-src entry lists OpenSSL 3.6 too: stay on 3.5.x. Prefer a listed
# 3.5.x that is already built in the cache, else the first listed. (No early
# 'exit' in awk: with pipefail, apt-cache's SIGPIPE would abort the script.)
ossl_pick() {
  local v first=""
  for v in $(apt-cache showsrc openssl 2>/dev/null | awk '/^Version: 3\.5\./ {print $2}'); do
    [ -n "$first" ] || first=$v
    if [ -f "$PEERSOCK_CACHE/openssl-$v/.complete" ]; then echo "$v"; return; fi
  done
  echo "$first"
}
ossl_version=$(ossl_pick)
if [ -z "$ossl_version" ]; then
  log "apt-get update (no trixie openssl source known yet)"
  $SUDO apt-get update -qq
  ossl_version=$(ossl_pick)
fi
[ -n "$ossl_version" ] || { log "error: no openssl 3.5 source package found in the trixie deb-src entry"; exit 1; }
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

# ---- ngtcp2 >= 1.12 (QUIC) + ngtcp2_crypto_ossl, static, cached ----------
# Built from Debian sid's source package against the OpenSSL above (its
# SSL_set_quic_tls_cbs API is what ngtcp2_crypto_ossl needs), never against
# Debian 12's system OpenSSL 3.0.
ngtcp2_versions() {
  # Every listed source version >= 1.12, newest first.
  apt-cache showsrc ngtcp2 2>/dev/null | awk '/^Version:/ {print $2}' \
    | while read -r v; do
        if dpkg --compare-versions "$v" ge 1.12; then echo "$v"; fi
      done | sort -u | sort -r -V
}
ngtcp2_complete() { # $1 = prefix: complete and built against this OpenSSL prefix?
  [ -f "$1/.complete" ] && grep -qxF "openssl=$prefix" "$1/.complete"
}
ngtcp2_prefix=""
# Fast path: the current link already points at a complete build for this OpenSSL.
if [ -L "$PEERSOCK_CACHE/ngtcp2-current" ]; then
  cur=$(readlink -f "$PEERSOCK_CACHE/ngtcp2-current")
  if ngtcp2_complete "$cur"; then ngtcp2_prefix=$cur; fi
fi
if [ -z "$ngtcp2_prefix" ]; then
  mapfile -t ng_versions < <(ngtcp2_versions)
  if [ ${#ng_versions[@]} = 0 ]; then
    log "apt-get update (no ngtcp2 >= 1.12 source known yet)"
    $SUDO apt-get update -qq
    mapfile -t ng_versions < <(ngtcp2_versions)
  fi
  [ ${#ng_versions[@]} -gt 0 ] || { log "error: no ngtcp2 >= 1.12 source package found in the sid deb-src entry"; exit 1; }
  # Reuse any complete cached build of a listed version.
  for v in "${ng_versions[@]}"; do
    if ngtcp2_complete "$PEERSOCK_CACHE/ngtcp2-$v"; then ngtcp2_prefix="$PEERSOCK_CACHE/ngtcp2-$v"; break; fi
  done
fi
if [ -z "$ngtcp2_prefix" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
  ng_version=""
  for v in "${ng_versions[@]}"; do
    # A version can be listed while its .dsc or tarball is missing on the mirror.
    if (cd "$work" && apt-get source -qq --download-only "ngtcp2=$v" >/dev/null 2>&1); then
      ng_version=$v; break
    fi
    log "ngtcp2 $v: source download failed, trying the next listed version"
    rm -f "$work"/ngtcp2_*
  done
  [ -n "$ng_version" ] || { log "error: could not download any ngtcp2 >= 1.12 source (${ng_versions[*]})"; exit 1; }
  ngtcp2_prefix="$PEERSOCK_CACHE/ngtcp2-$ng_version"
  log "building ngtcp2 $ng_version into $ngtcp2_prefix (about a minute, once)"
  (cd "$work" && dpkg-source -x ngtcp2_*.dsc src >/dev/null)
  rm -rf "$ngtcp2_prefix"
  cmake -S "$work/src" -B "$work/build" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX="$ngtcp2_prefix" -DCMAKE_INSTALL_LIBDIR=lib \
    -DCMAKE_POSITION_INDEPENDENT_CODE=ON \
    -DENABLE_LIB_ONLY=ON -DENABLE_STATIC_LIB=ON -DENABLE_SHARED_LIB=OFF -DBUILD_TESTING=OFF \
    -DENABLE_OPENSSL=ON -DENABLE_GNUTLS=OFF -DENABLE_BORINGSSL=OFF -DENABLE_WOLFSSL=OFF \
    -DENABLE_PICOTLS=OFF -DENABLE_JEMALLOC=OFF \
    -DOPENSSL_ROOT_DIR="$prefix" -DOPENSSL_USE_STATIC_LIBS=TRUE >"$work/cmake.log" 2>&1 \
    || { cat "$work/cmake.log" >&2; log "error: ngtcp2 cmake configure failed"; exit 1; }
  # FindOpenSSL must have found OUR static OpenSSL, not Debian 12's /usr one.
  for var in OPENSSL_INCLUDE_DIR OPENSSL_SSL_LIBRARY OPENSSL_CRYPTO_LIBRARY; do
    val=$(sed -n "s/^$var:[A-Z]*=//p" "$work/build/CMakeCache.txt")
    case "$val" in
      "$prefix"/*) ;;
      *) log "error: ngtcp2's cmake picked $var=$val, not from $prefix"; exit 1 ;;
    esac
  done
  grep -q '^HAVE_SSL_SET_QUIC_TLS_CBS:INTERNAL=1$' "$work/build/CMakeCache.txt" \
    || { log "error: ngtcp2's cmake found no SSL_set_quic_tls_cbs in $prefix (ngtcp2_crypto_ossl would be skipped)"; exit 1; }
  ninja -C "$work/build" install >"$work/build.log" 2>&1 \
    || { tail -50 "$work/build.log" >&2; log "error: ngtcp2 build failed"; exit 1; }
  for f in lib/libngtcp2.a lib/libngtcp2_crypto_ossl.a \
           include/ngtcp2/ngtcp2.h include/ngtcp2/ngtcp2_crypto.h include/ngtcp2/ngtcp2_crypto_ossl.h; do
    [ -f "$ngtcp2_prefix/$f" ] || { log "error: ngtcp2 install lacks $f"; exit 1; }
  done
  printf 'openssl=%s\n' "$prefix" >"$ngtcp2_prefix/.complete"
  rm -rf "$work"; trap - EXIT
fi
ln -sfn "$ngtcp2_prefix" "$PEERSOCK_CACHE/ngtcp2-current"
log "ngtcp2 ${ngtcp2_prefix##*/ngtcp2-} at $ngtcp2_prefix"

[ "${1:-}" = "--deps" ] && exit 0

# ---- peersock -----------------------------------------------------------
BUILD_DIR=${BUILD_DIR:-build}
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}"
if [ ! -f "$BUILD_DIR/build.ninja" ]; then
  meson setup "$BUILD_DIR" -Dopenssl_prefix="$prefix" -Dngtcp2_prefix="$ngtcp2_prefix" ${MESON_ARGS:-} >/dev/null
else
  # meson 1.0 'configure' rejects options added to meson_options.txt after the
  # build dir was set up (e.g. ngtcp2_prefix); a reconfigure picks them up.
  meson configure "$BUILD_DIR" -Dopenssl_prefix="$prefix" -Dngtcp2_prefix="$ngtcp2_prefix" >/dev/null 2>&1 \
    || meson setup --reconfigure "$BUILD_DIR" -Dopenssl_prefix="$prefix" -Dngtcp2_prefix="$ngtcp2_prefix" >/dev/null
fi
ninja -C "$BUILD_DIR" >&2
