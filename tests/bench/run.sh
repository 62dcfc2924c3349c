#!/usr/bin/env bash
# Benchmark: builds release binaries in build-release (meson buildtype=release)
# and runs tests/bench/bench.py, which prints Markdown tables. Needs root
# (network namespaces). Not part of the test suite; nothing here is asserted.
#
#   tests/bench/run.sh [--commit REV] [--commit-b REV] [bench.py options]   (--help lists them)
#
# Without --commit it measures what the working tree builds (the output
# names the commit and any uncommitted product files). --commit REV
# measures exactly that commit: `git archive` exports it to
# ${TMPDIR:-/tmp}/peersock-bench-src-<sha> and builds there (the
# benchmark scripts themselves still come from this tree). --commit-b REV
# builds REV the same way and measures it as a second peersock column
# (bench.py --bin-b), interleaved with the first: an A/B on the same run.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
cd "$here"
rev=""
rev_b=""
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --commit) rev=$2; shift 2 ;;
    --commit=*) rev=${1#*=}; shift ;;
    --commit-b) rev_b=$2; shift 2 ;;
    --commit-b=*) rev_b=${1#*=}; shift ;;
    *) args+=("$1"); shift ;;
  esac
done
# export REV: prints the directory holding a clean export of that commit
export_rev() {
  local sha dir
  sha=$(git rev-parse --verify "$1^{commit}")
  dir=${TMPDIR:-/tmp}/peersock-bench-src-${sha:0:12}
  if [ ! -f "$dir/meson.build" ]; then
    rm -rf "$dir.part"
    mkdir -p "$dir.part"
    git archive "$sha" | tar -x -C "$dir.part"
    mv "$dir.part" "$dir"
  fi
  echo "$dir"
}
src=$here
if [ -n "$rev" ]; then
  src=$(export_rev "$rev")
  args=(--rev "$(git rev-parse --verify "$rev^{commit}")" "${args[@]}")
fi
cache=${PEERSOCK_CACHE:-/var/cache/peersock}
ossl="$cache/openssl-current"
ngtcp2="$cache/ngtcp2-current"
[ -d "$ossl" ] || { echo "run scripts/setup.sh first (no OpenSSL at $ossl)" >&2; exit 1; }
[ -d "$ngtcp2" ] || { echo "run scripts/setup.sh first (no ngtcp2 at $ngtcp2)" >&2; exit 1; }
ossl=$(readlink -f "$ossl")
ngtcp2=$(readlink -f "$ngtcp2")

# Tools the benchmark drives (idempotent: installs only what is missing).
# openssh-server/client and socat normally come from scripts/setup.sh;
# ethtool turns the veth offloads off for the delay/loss rows; perf is
# optional (--perf).
need=()
command -v ethtool >/dev/null || [ -x /usr/sbin/ethtool ] || need+=(ethtool)
[ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null || need+=(openssh-client)
command -v socat >/dev/null || need+=(socat)
command -v nstat >/dev/null || need+=(iproute2)
pkg-config --exists libnetfilter_queue || need+=(libnetfilter-queue-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing ${need[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2
fi

# -Dwerror=false: GCC 12 at -O3 reports a false stringop-overread in std::vector
# code (src/auth encode_frame); the normal build keeps -Werror.
opts=(--buildtype=release -Dwerror=false -Dtests=false -Dopenssl_prefix="$ossl" -Dngtcp2_prefix="$ngtcp2")
# build SRC: release peersock in SRC/build-release
build() {
  local src=$1 dir=$1/build-release have
  if [ ! -f "$dir/build.ninja" ]; then
    (cd "$src" && meson setup "$dir" "${opts[@]}" >&2)
  else
    # An older build-release lacks -Dngtcp2_prefix (or points at another
    # OpenSSL/ngtcp2): reconfigure it in place.
    have=$(meson introspect --buildoptions "$dir" | /usr/bin/python3 -c '
import json, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
print(o.get("openssl_prefix", ""), o.get("ngtcp2_prefix", "<none>"), o.get("buildtype", ""))')
    if [ "$have" != "$ossl $ngtcp2 release" ]; then
      (cd "$src" && meson setup --reconfigure "$dir" "${opts[@]}" >&2)
    fi
  fi
  ninja -C "$dir" peersock >&2
}
build "$src"
dir=$src/build-release
if [ -n "$rev_b" ]; then
  src_b=$(export_rev "$rev_b")
  build "$src_b"
  args=(--bin-b "$src_b/build-release/peersock" "${args[@]}")
fi

# nfq-delay (tests/netlab/nfq_delay.cpp: delay through NFQUEUE; this kernel
# has no sch_netem). build-release has no tests, so compile it here.
nfq="$here/build-release/nfq-delay"
if [ ! -x "$nfq" ] || [ tests/netlab/nfq_delay.cpp -nt "$nfq" ]; then
  mkdir -p "$(dirname "$nfq")"
  # shellcheck disable=SC2046
  g++ -std=c++20 -O2 -o "$nfq" tests/netlab/nfq_delay.cpp $(pkg-config --cflags --libs libnetfilter_queue) >&2
fi

exec /usr/bin/python3 tests/bench/bench.py --bin "$dir/peersock" --nfq-delay "$nfq" --src "$here" "${args[@]}"
