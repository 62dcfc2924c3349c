#!/usr/bin/env bash
# Benchmark: builds release binaries in build-release (meson buildtype=release)
# and runs tests/bench/bench.py, which prints a Markdown table. Needs root
# (network namespaces). Not part of the test suite; nothing here is asserted.
#
#   tests/bench/run.sh [--mib N] [--shaped-mib N] [--lossy-mib N] [--connections N] [--pings N]
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
prefix=${PEERSOCK_CACHE:-/var/cache/peersock}/openssl-current
[ -d "$prefix" ] || { echo "run scripts/setup.sh first (no OpenSSL at $prefix)" >&2; exit 1; }
dir=build-release
if [ ! -f "$dir/build.ninja" ]; then
  # -Dwerror=false: GCC 12 at -O3 reports a false stringop-overread in std::vector
  # code (src/auth encode_frame); the normal build keeps -Werror.
  meson setup "$dir" --buildtype=release -Dwerror=false -Dtests=false -Dopenssl_prefix="$(readlink -f "$prefix")" >/dev/null
fi
ninja -C "$dir" peersock >&2
exec /usr/bin/python3 tests/bench/bench.py --bin "$here/$dir/peersock" "$@"
