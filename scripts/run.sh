#!/usr/bin/env bash
# Command 1 of the README: install dependencies and build if needed, then run
# peersock with the given arguments (--help when none are given).
#   scripts/run.sh listen 8080
#   scripts/run.sh connect 127.0.0.1:22 7-abandon-zoo-lab-name
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
# Set-up output goes to stderr: stdout may carry stdio-a/stdio-b data.
bash "$here/scripts/setup.sh" >&2
bin="$here/${BUILD_DIR:-build}/peersock"
if [ $# -eq 0 ]; then set -- --help; fi
exec "$bin" "$@"
