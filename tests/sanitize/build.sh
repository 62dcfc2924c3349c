#!/usr/bin/env bash
# Configures and builds the sanitizer build directory used by tests/run_all.sh:
# clang, AddressSanitizer + UndefinedBehaviorSanitizer (every UB report is
# fatal: -fno-sanitize-recover=all), and the libFuzzer targets (-Dfuzzers=true,
# which needs clang). Same OpenSSL as the normal build. Idempotent.
#
#   tests/sanitize/build.sh            build-asan (or $ASAN_BUILD_DIR)
#
# Environment: ASAN_BUILD_DIR, BUILD_DIR (the normal build whose openssl_prefix
# is reused), PEERSOCK_CACHE (fallback: its openssl-current link).
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
dir=${ASAN_BUILD_DIR:-build-asan}
normal=${BUILD_DIR:-build}

prefix=""
if [ -f "$normal/build.ninja" ]; then
  prefix=$(meson introspect "$normal" --buildoptions 2>/dev/null | /usr/bin/python3 -c '
import json, sys
for o in json.load(sys.stdin):
    if o["name"] == "openssl_prefix":
        print(o["value"])')
fi
if [ -z "$prefix" ]; then
  cache=${PEERSOCK_CACHE:-$([ "$(id -u)" = 0 ] && echo /var/cache/peersock || echo "$HOME/.cache/peersock")}
  prefix=$(readlink -f "$cache/openssl-current" || true)
fi
[ -n "$prefix" ] && [ -d "$prefix/lib" ] || { echo "sanitize/build.sh: no OpenSSL build found (run scripts/setup.sh first)" >&2; exit 1; }
command -v clang++ >/dev/null || { echo "sanitize/build.sh: clang++ missing (scripts/setup.sh installs clang)" >&2; exit 1; }

if [ ! -f "$dir/build.ninja" ]; then
  CC=clang CXX=clang++ meson setup "$dir" -Dopenssl_prefix="$prefix" \
    -Db_sanitize=address,undefined -Db_lundef=false \
    -Dcpp_args=-fno-sanitize-recover=all -Dcpp_link_args=-fno-sanitize-recover=all \
    -Dfuzzers=true >/dev/null
else
  meson configure "$dir" -Dopenssl_prefix="$prefix" -Dfuzzers=true >/dev/null
fi
ninja -C "$dir"
