#!/usr/bin/env bash
# Runs the 200-concurrent-connections e2e test N times in a row (default 200)
# and stops at the first failure, keeping its output. By hand, not in the
# suite: it is how a rare stall (seen once in ~25 runs with OpenSSL's QUIC on
# both ends and UDP GSO) is shown gone or caught.
#
#   tests/stress/repeat_200_connections.sh [N]     (root; builds nothing)
# PEERSOCK_BIN picks the binary (default build/peersock). Direct UDP pairs
# send with UDP GSO by default, which is what this loop exercises.
set -euo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
n=${1:-200}
log=$(mktemp -d)/run.log
for i in $(seq 1 "$n"); do
  if ! (cd "$here/tests/e2e" && PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        "test_data_plane.py::test_200_concurrent_connections_random_sizes" >"$log" 2>&1); then
    echo "run $i of $n FAILED; output in $log"
    tail -30 "$log"
    exit 1
  fi
  printf 'run %d of %d passed\n' "$i" "$n"
done
echo "$n passed, 0 failed"
