#!/usr/bin/env bash
# The long fuzzing run (not part of tests/run_all.sh): every target until it
# has executed RUNS inputs (default 10 million) or MAX_SECONDS passed (default
# 3 hours), one after the other, at the lowest CPU priority. The growing
# corpus is kept in $BUILD_DIR/fuzz-corpus/<target> between runs; crashes go
# to $BUILD_DIR/fuzz-artifacts/. One summary line per target is appended to
# $BUILD_DIR/fuzz-long.txt; docs/security.md records the numbers.
#
#   tests/sanitize/build.sh                  # builds the targets (clang, ASan+UBSan)
#   tests/fuzz/run_long.sh [RUNS] [MAX_SECONDS] [TARGET...]
#
# Environment: ASAN_BUILD_DIR (default build-asan).
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${ASAN_BUILD_DIR:-build-asan}
[ "${build#/}" = "$build" ] && build="$here/$build"
runs=${1:-10000000}
max_seconds=${2:-10800}
shift 2 2>/dev/null || shift $#
targets=("$@")
[ ${#targets[@]} = 0 ] && targets=(fuzz_stream_header fuzz_code fuzz_config fuzz_auth_frames fuzz_ice_body fuzz_mailbox fuzz_pake fuzz_smp fuzz_text fuzz_alpn fuzz_pairing fuzz_udp_flow_header)
# shellcheck source=../sanitize/env.sh
. "$here/tests/sanitize/env.sh"
mkdir -p "$build/fuzz-artifacts"
summary="$build/fuzz-long.txt"
status=0
for t in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$t"
  mkdir -p "$corpus"
  dict=()
  [ -f "$here/tests/fuzz/$t.dict" ] && dict=(-dict="$here/tests/fuzz/$t.dict")
  out="$build/fuzz-long-$t.log"
  start=$(date +%s)
  nice -n 19 "$build/tests/fuzz/$t" -runs="$runs" -max_total_time="$max_seconds" -timeout=60 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="$build/fuzz-artifacts/$t-" "${dict[@]}" "$corpus" "$here/tests/fuzz/corpus/$t" \
    >"$out" 2>&1
  rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
  cov=$(grep -o 'cov: [0-9]*' "$out" | tail -1)
  line="$(date -u +%FT%TZ) $t: exit $rc, ${execs:-?} executions in $(( $(date +%s) - start )) s, ${cov:-cov: ?}, corpus $(ls "$corpus" | wc -l) inputs"
  echo "$line" | tee -a "$summary"
  [ "$rc" != 0 ] && status=1
done
exit $status
