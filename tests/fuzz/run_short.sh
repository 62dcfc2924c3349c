#!/usr/bin/env bash
# Runs every libFuzzer target for a few seconds and writes one JUnit test case
# per target (part of tests/run_all.sh). A target fails when libFuzzer finds a
# crash, a sanitizer report, a leak, a timeout (>30 s per input) or an
# out-of-memory (>2 GiB); the reproducer is kept in LOGDIR/fuzz-artifacts/.
#
#   tests/fuzz/run_short.sh BUILD_DIR SECONDS JUNIT_XML
#
# The seed corpora in tests/fuzz/corpus/<target>/ are read, never written:
# new inputs go to a temporary directory that is removed afterwards.
set -uo pipefail
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:?usage: run_short.sh BUILD_DIR SECONDS JUNIT_XML}
seconds=${2:-20}
xml=${3:?usage: run_short.sh BUILD_DIR SECONDS JUNIT_XML}
logdir=$(dirname "$xml")
artifacts="$logdir/fuzz-artifacts"
mkdir -p "$artifacts"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

targets=(fuzz_mailbox fuzz_pake fuzz_ice_body fuzz_auth_frames fuzz_smp fuzz_code fuzz_stream_header fuzz_config fuzz_text fuzz_alpn fuzz_pairing fuzz_udp_flow_header)
results="$work/results.tsv"
: >"$results"
status=0
for t in "${targets[@]}"; do
  exe="$here/$build/tests/fuzz/$t"
  out="$logdir/$t.log"
  mkdir -p "$work/$t"
  start=$(date +%s%N)
  if [ ! -x "$exe" ]; then
    echo "missing $exe (build with tests/sanitize/build.sh)" >"$out"
    rc=127
  else
    dict=()
    [ -f "$here/tests/fuzz/$t.dict" ] && dict=(-dict="$here/tests/fuzz/$t.dict")
    "$exe" -max_total_time="$seconds" -timeout=30 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$artifacts/$t-" "${dict[@]}" "$work/$t" "$here/tests/fuzz/corpus/$t" >"$out" 2>&1
    rc=$?
  fi
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  secs=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out" | tail -1)
  printf '%s\t%s\t%s\t%s\t%s\n' "$t" "$rc" "$secs" "${execs:-0}" "$out" >>"$results"
  echo "fuzz: $t: exit $rc, ${execs:-0} executions in ${secs}s"
  [ "$rc" != 0 ] && { status=1; tail -40 "$out"; }
done

/usr/bin/python3 - "$results" "$xml" <<'PY'
import sys
from xml.sax.saxutils import escape, quoteattr
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
cases = []
failures = 0
for name, rc, secs, execs, log in rows:
    body = ""
    if rc != "0":
        failures += 1
        try:
            tail = "".join(open(log, errors="replace").readlines()[-60:])
        except OSError:
            tail = ""
        body = f'<failure message={quoteattr(f"libFuzzer exited {rc} (see {log})")}>{escape(tail)}</failure>'
    cases.append(f'<testcase classname="fuzz" name={quoteattr(f"{name} ({execs} executions)")} time="{float(secs):.1f}">{body}</testcase>')
with open(sys.argv[2], "w") as f:
    f.write(f'<?xml version="1.0" encoding="utf-8"?>\n<testsuites><testsuite name="fuzz" tests="{len(cases)}" failures="{failures}">\n')
    f.write("\n".join(cases) + "\n</testsuite></testsuites>\n")
PY
exit $status
