#!/usr/bin/env bash
# THE peersock test command: set-up and build, unit tests, end-to-end tests,
# then one closing line `N passed, N failed[, N skipped]` counted from the
# JUnit files of both suites. Exits non-zero if anything failed or no test ran.
#
# Environment:
#   BUILD_DIR              meson build directory (default: build)
#   PEERSOCK_TEST_LOG_DIR  logs and JUnit files (default: build-tests, git-ignored)
#   PEERSOCK_SKIP_SETUP=1  do not run scripts/setup.sh (quick re-runs on a built tree)
#   PEERSOCK_E2E_ARGS      extra pytest arguments, e.g. "-k stdio -x"
#   PEERSOCK_MESON_TEST_ARGS  extra meson test arguments, e.g. --no-rebuild
#   PEERSOCK_E2E_BIG_MIB, PEERSOCK_E2E_TIME_SCALE: see tests/e2e/README.md
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

export BUILD_DIR=${BUILD_DIR:-build}
logdir=${PEERSOCK_TEST_LOG_DIR:-build-tests}
mkdir -p "$logdir"
logdir=$(cd "$logdir" && pwd)
log="$logdir/run_all.log"
: >"$log"
unit_xml="$logdir/unit.junit.xml"
e2e_xml="$logdir/e2e.junit.xml"
rm -f "$unit_xml" "$e2e_xml"
PY=/usr/bin/python3

say() { printf '== %s\n' "$*" | tee -a "$log"; }
summarize() { "$PY" "$here/tests/summarize_junit.py" "$@" 2>&1 | tee -a "$log"; return "${PIPESTATUS[0]}"; }

say "log: $log"

# ---- 1. set-up and build ---------------------------------------------------
if [ "${PEERSOCK_SKIP_SETUP:-0}" != 1 ]; then
  say "set-up and build (scripts/setup.sh)"
  bash scripts/setup.sh </dev/null 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then
    say "scripts/setup.sh failed with status $rc: no test can run"
    summarize --stage-failed "setup-and-build=" || true
    exit 1
  fi
else
  say "PEERSOCK_SKIP_SETUP=1: not running scripts/setup.sh"
fi

# ---- 2. unit tests (GoogleTest through meson) ------------------------------
say "unit tests: meson test -C $BUILD_DIR --suite unit"
meson_junit="$BUILD_DIR/meson-logs/testlog.junit.xml"
rm -f "$meson_junit"
# Stale GoogleTest XML from an earlier run would be taken as this run's result
# if a test binary crashed before writing its own: remove them first.
meson introspect "$BUILD_DIR" --tests 2>/dev/null | "$PY" -c '
import json, os, sys
build = sys.argv[1]
try:
    tests = json.load(sys.stdin)
except ValueError:
    tests = []
for t in tests:
    if t.get("protocol") == "gtest":
        p = os.path.join(t.get("workdir") or build, t["name"] + ".xml")
        if os.path.exists(p):
            os.remove(p)
' "$BUILD_DIR"
# shellcheck disable=SC2086
meson test -C "$BUILD_DIR" --suite unit --print-errorlogs ${PEERSOCK_MESON_TEST_ARGS:-} </dev/null 2>&1 | tee -a "$log"
unit_rc=${PIPESTATUS[0]}
[ -f "$meson_junit" ] && cp "$meson_junit" "$unit_xml"
say "unit tests: meson test exited with status $unit_rc"

# ---- 3. end-to-end tests ---------------------------------------------------
say "end-to-end tests: pytest tests/e2e"
# shellcheck disable=SC2086
PEERSOCK_BIN=${PEERSOCK_BIN:-$here/$BUILD_DIR/peersock} PYTHONDONTWRITEBYTECODE=1 \
  "$PY" -m pytest "$here/tests/e2e" -v --junitxml="$e2e_xml" ${PEERSOCK_E2E_ARGS:-} </dev/null 2>&1 | tee -a "$log"
e2e_rc=${PIPESTATUS[0]}
say "end-to-end tests: pytest exited with status $e2e_rc"

# ---- 4. closing line ---------------------------------------------------------
args=(--require "unit=$unit_xml" --require "e2e=$e2e_xml")
[ "$unit_rc" != 0 ] && args+=(--stage-failed "unit (meson test)=$unit_xml")
[ "$e2e_rc" != 0 ] && args+=(--stage-failed "e2e (pytest)=$e2e_xml")
summarize "${args[@]}"
exit $?
