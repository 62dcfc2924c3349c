#!/usr/bin/env bash
# Command 1 of the README: install dependencies and build if needed, then run
# peersock with the given arguments (--help when none are given).
#   scripts/run.sh demo         # as root: the whole thing on one machine (scripts/demo.sh)
#   scripts/run.sh listen 8080
#   scripts/run.sh connect 127.0.0.1:22 7-abandon-zoo-lab-name
#
# Quiet when the build is up to date: then it only runs peersock. Otherwise
# it says "run.sh: building..." once, runs scripts/setup.sh with its output
# kept aside (only the lines announcing long steps -- apt installs, the
# OpenSSL and ngtcp2 builds -- are shown), and shows that output in full if
# the set-up or build fails. Everything of its own goes to stderr: stdout may
# carry stdio-a/stdio-b data.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build="$here/${BUILD_DIR:-build}"
bin="$build/peersock"

demo=0
if [ "${1:-}" = demo ]; then
  demo=1
  if [ "$(id -u)" != 0 ]; then
    echo "run.sh: the demo needs root (it creates network namespaces): run 'sudo scripts/run.sh demo'" >&2
    exit 1
  fi
fi

# Up to date: the binary exists and ninja has nothing to do for it (a
# changed source, meson.build or option shows up as a step in the dry run).
up_to_date() {
  [ -x "$bin" ] && [ -f "$build/build.ninja" ] || return 1
  command -v ninja >/dev/null || return 1
  local plan
  plan=$(ninja -C "$build" -n peersock 2>&1) || return 1
  ! grep -q '^\[' <<<"$plan"
}
# The demo's tools come with the set-up too.
demo_tools_present() {
  local t
  for t in ip curl /usr/bin/twistd3 /usr/bin/python3; do command -v "$t" >/dev/null || return 1; done
}

if ! up_to_date || { [ $demo = 1 ] && ! demo_tools_present; }; then
  echo "run.sh: building..." >&2
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  set +e
  bash "$here/scripts/setup.sh" </dev/null 2>&1 | tee "$log" \
    | { grep --line-buffered -E '^setup: (installing|building|adding|apt-get)' >&2 || true; }
  status=${PIPESTATUS[0]}
  set -e
  if [ "$status" != 0 ]; then
    cat "$log" >&2
    echo "run.sh: scripts/setup.sh failed (status $status); its output is above" >&2
    exit "$status"
  fi
  rm -f "$log"
  trap - EXIT
fi

if [ $demo = 1 ]; then
  shift
  PEERSOCK_BIN="$bin" exec bash "$here/scripts/demo.sh" "$@"
fi
if [ $# -eq 0 ]; then set -- --help; fi
exec "$bin" "$@"
