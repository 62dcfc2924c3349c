#!/usr/bin/env bash
# THE peersock test command: set-up and build, then the same suites twice --
# once on the normal build, once on an AddressSanitizer + UBSan build -- then
# a short run of every libFuzzer target, and one closing line
# `N passed, N failed[, N skipped]` counted from the JUnit files of every
# stage. Exits non-zero if anything failed or no test ran.
#
# Stages (each writes one JUnit file into the log directory):
#   unit       meson test --suite unit on $BUILD_DIR             unit.junit.xml
#   e2e        pytest tests/e2e against $BUILD_DIR/peersock       e2e.junit.xml
#   unit-asan  the unit suite on $ASAN_BUILD_DIR                  unit-asan.junit.xml
#   e2e-asan   pytest tests/e2e against $ASAN_BUILD_DIR/peersock  e2e-asan.junit.xml
#   fuzz       every tests/fuzz target for a few seconds          fuzz.junit.xml
# More stages (e.g. a netlab suite) are added by appending one `stage` line
# below; the summary picks up every JUnit file registered with `expect`.
#
# Environment:
#   BUILD_DIR              meson build directory (default: build)
#   ASAN_BUILD_DIR         sanitizer build directory (default: build-asan, clang)
#   PEERSOCK_TEST_LOG_DIR  logs and JUnit files (default: build-tests, git-ignored)
#   PEERSOCK_SKIP_SETUP=1  do not run scripts/setup.sh (quick re-runs on a built tree)
#   PEERSOCK_E2E_ARGS      extra pytest arguments for both e2e passes, e.g. "-k stdio -x"
#   PEERSOCK_MESON_TEST_ARGS  extra meson test arguments, e.g. --no-rebuild
#   PEERSOCK_E2E_BIG_MIB, PEERSOCK_E2E_TIME_SCALE: see tests/e2e/README.md
#   PEERSOCK_ASAN_BIG_MIB  big transfer size in the sanitizer pass (default 16)
#   PEERSOCK_ASAN_TIME_SCALE  deadline scale in the sanitizer pass (default 3)
#   PEERSOCK_ASAN_E2E_ARGS extra pytest arguments for the sanitizer e2e pass only
#   PEERSOCK_SANITIZE=0    skip the sanitizer pass and the fuzz runs (counted as nothing)
#   PEERSOCK_FUZZ_SECONDS  seconds per fuzz target (default 20; 0 = skip fuzzing)
set -uo pipefail

here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"

export BUILD_DIR=${BUILD_DIR:-build}
ASAN_BUILD_DIR=${ASAN_BUILD_DIR:-build-asan}
logdir=${PEERSOCK_TEST_LOG_DIR:-build-tests}
mkdir -p "$logdir"
logdir=$(cd "$logdir" && pwd)
log="$logdir/run_all.log"
: >"$log"
rm -f "$logdir"/*.junit.xml
PY=/usr/bin/python3

say() { printf '== %s [%s]\n' "$*" "$(date -u +%H:%M:%S)" | tee -a "$log"; }
summarize() { "$PY" "$here/tests/summarize_junit.py" "$@" 2>&1 | tee -a "$log"; return "${PIPESTATUS[0]}"; }

# Arguments for summarize_junit.py, collected by the stages.
summary_args=()
expect() { summary_args+=(--require "$1=$2"); }                  # NAME JUNIT: must exist and hold tests
stage_failed() { summary_args+=(--stage-failed "$1=$2"); }       # NAME JUNIT: the stage exited non-zero

say "log: $log"
t_start=$(date +%s)

# ---- set-up and build ------------------------------------------------------
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

# ---- building blocks -------------------------------------------------------

# unit_tests NAME BUILD_DIR: the meson unit suite, JUnit into $logdir/NAME.junit.xml
unit_tests() {
  local name=$1 dir=$2 xml="$logdir/$1.junit.xml"
  say "$name: meson test -C $dir --suite unit"
  local meson_junit="$dir/meson-logs/testlog.junit.xml"
  rm -f "$meson_junit"
  # Stale GoogleTest XML from an earlier run would be taken as this run's result
  # if a test binary crashed before writing its own: remove them first.
  meson introspect "$dir" --tests 2>/dev/null | "$PY" -c '
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
' "$dir"
  # shellcheck disable=SC2086
  meson test -C "$dir" --suite unit --print-errorlogs ${PEERSOCK_MESON_TEST_ARGS:-} </dev/null 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  [ -f "$meson_junit" ] && cp "$meson_junit" "$xml"
  say "$name: meson test exited with status $rc"
  expect "$name" "$xml"
  [ "$rc" != 0 ] && stage_failed "$name (meson test)" "$xml"
  return 0
}

# e2e_tests NAME BINARY [VAR=VALUE...]: pytest tests/e2e against BINARY
e2e_tests() {
  local name=$1 bin=$2 xml="$logdir/$1.junit.xml"
  shift 2
  say "$name: pytest tests/e2e with $bin $*"
  # shellcheck disable=SC2086
  env PEERSOCK_BIN="$bin" PYTHONDONTWRITEBYTECODE=1 "$@" \
    "$PY" -m pytest "$here/tests/e2e" -v --junitxml="$xml" -o junit_suite_name="$name" ${PEERSOCK_E2E_ARGS:-} \
    </dev/null 2>&1 | tee -a "$log"
  local rc=${PIPESTATUS[0]}
  say "$name: pytest exited with status $rc"
  expect "$name" "$xml"
  [ "$rc" != 0 ] && stage_failed "$name (pytest)" "$xml"
  return 0
}

# ---- 1. the normal build ---------------------------------------------------
unit_tests unit "$BUILD_DIR"
e2e_tests e2e "${PEERSOCK_BIN:-$here/$BUILD_DIR/peersock}"

# ---- 2. AddressSanitizer + UndefinedBehaviorSanitizer build ---------------
# Any report aborts the process with status 86 (tests expecting another status
# fail) and is also found in the peer's stderr by tests/e2e/conftest.py, which
# fails the test even when the peer was stopped by the test. Leaks are checked
# at exit (LeakSanitizer works as root here; known leaks of system libraries
# are suppressed in tests/sanitize/lsan.supp, each with its reason).
if [ "${PEERSOCK_SANITIZE:-1}" != 0 ]; then
  say "sanitizer build: tests/sanitize/build.sh $ASAN_BUILD_DIR"
  ASAN_BUILD_DIR="$ASAN_BUILD_DIR" bash tests/sanitize/build.sh </dev/null 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then
    say "sanitizer build failed with status $rc"
    stage_failed "sanitizer build (tests/sanitize/build.sh)" ""
  else
    # shellcheck source=sanitize/env.sh
    . tests/sanitize/env.sh
    # LeakSanitizer stops the process's threads with ptrace; where that is
    # denied (some containers) it aborts every process at exit. Probe once
    # and run without leak checking rather than fail every test.
    if ! "$ASAN_BUILD_DIR/peersock" --version >/dev/null 2>"$logdir/lsan-probe.txt" &&
       grep -q "LeakSanitizer has encountered a fatal error" "$logdir/lsan-probe.txt"; then
      say "LeakSanitizer cannot run here (ptrace denied?): sanitizer pass WITHOUT leak checking"
      export ASAN_OPTIONS="${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}"
    fi
    unit_tests unit-asan "$ASAN_BUILD_DIR"
    PEERSOCK_E2E_ARGS="${PEERSOCK_E2E_ARGS:-} ${PEERSOCK_ASAN_E2E_ARGS:-}" \
      e2e_tests e2e-asan "$here/$ASAN_BUILD_DIR/peersock" \
      PEERSOCK_E2E_BIG_MIB="${PEERSOCK_ASAN_BIG_MIB:-16}" \
      PEERSOCK_E2E_TIME_SCALE="${PEERSOCK_ASAN_TIME_SCALE:-3}"

    # ---- 3. fuzzing: a short run of every target ----------------------------
    if [ "${PEERSOCK_FUZZ_SECONDS:-20}" != 0 ]; then
      say "fuzz: tests/fuzz/run_short.sh ($ASAN_BUILD_DIR, ${PEERSOCK_FUZZ_SECONDS:-20} s per target)"
      bash tests/fuzz/run_short.sh "$ASAN_BUILD_DIR" "${PEERSOCK_FUZZ_SECONDS:-20}" "$logdir/fuzz.junit.xml" \
        </dev/null 2>&1 | tee -a "$log"
      rc=${PIPESTATUS[0]}
      expect fuzz "$logdir/fuzz.junit.xml"
      [ "$rc" != 0 ] && stage_failed "fuzz (tests/fuzz/run_short.sh)" "$logdir/fuzz.junit.xml"
    fi
    unset ASAN_OPTIONS UBSAN_OPTIONS LSAN_OPTIONS
  fi
fi

# ---- closing line ----------------------------------------------------------
say "all stages done in $(( $(date +%s) - t_start )) s"
summarize "${summary_args[@]}"
exit $?
