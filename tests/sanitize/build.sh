#!/usr/bin/env bash
# Configures and builds the sanitizer build directory used by tests/run_all.sh:
# clang, AddressSanitizer + UndefinedBehaviorSanitizer (every UB report is
# fatal: -fno-sanitize-recover=all), and the libFuzzer targets (-Dfuzzers=true,
# which needs clang). Same OpenSSL as the normal build. Idempotent.
#
#   tests/sanitize/build.sh            build-asan (or $ASAN_BUILD_DIR)
#
# Environment: ASAN_BUILD_DIR, BUILD_DIR (the normal build whose openssl_prefix
# and ngtcp2_prefix are reused), PEERSOCK_CACHE (fallback: its openssl-current
# and ngtcp2-current links).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
dir=${ASAN_BUILD_DIR:-build-asan}
normal=${BUILD_DIR:-build}

# The normal build's prefix for NAME (openssl_prefix, ngtcp2_prefix), else
# the cache's NAME-current link.
prefix_of() {
  local option=$1 link=$2 value=""
  if [ -f "$normal/build.ninja" ]; then
    value=$(meson introspect "$normal" --buildoptions 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for o in json.load(sys.stdin):
    if o["name"] == sys.argv[1]:
        print(o["value"])' "$option")
  fi
  if [ -z "$value" ]; then
    local cache=${PEERSOCK_CACHE:-$([ "$(id -u)" = 0 ] && echo /var/cache/peersock || echo "$HOME/.cache/peersock")}
    value=$(readlink -f "$cache/$link" || true)
  fi
  echo "$value"
}
prefix=$(prefix_of openssl_prefix openssl-current)
[ -n "$prefix" ] && [ -d "$prefix/lib" ] || { echo "sanitize/build.sh: no OpenSSL build found (run scripts/setup.sh first)" >&2; exit 1; }
ngtcp2=$(prefix_of ngtcp2_prefix ngtcp2-current)
[ -n "$ngtcp2" ] && [ -d "$ngtcp2/lib" ] || { echo "sanitize/build.sh: no ngtcp2 build found (run scripts/setup.sh first)" >&2; exit 1; }
command -v clang++ >/dev/null || { echo "sanitize/build.sh: clang++ missing (scripts/setup.sh installs clang)" >&2; exit 1; }

if [ ! -f "$dir/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$dir" -Dopenssl_prefix="$prefix" -Dngtcp2_prefix="$ngtcp2" \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcpp_args=-fno-sanitize-recover=all -Dcpp_link_args=-fno-sanitize-recover=all \
    -Dfuzzers=true >/dev/null
else
  # A directory set up before the ngtcp2_prefix option existed cannot take it
  # with `meson configure` (meson 1.0): reconfigure instead.
  meson configure "$dir" -Dopenssl_prefix="$prefix" -Dngtcp2_prefix="$ngtcp2" -Dfuzzers=true >/dev/null 2>&1 ||
    CC=clang CXX=clang++ meson setup --reconfigure "$dir" -Dopenssl_prefix="$prefix" -Dngtcp2_prefix="$ngtcp2" \
      -Dfuzzers=true >/dev/null
fi
ninja -C "$dir"
