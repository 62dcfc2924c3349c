#!/usr/bin/env bash
# Command 2 of the README: install dependencies, build, run every test.
# tests/run_all.sh runs scripts/setup.sh itself (once), then the unit and
# end-to-end suites, and ends with the line `N passed, N failed`.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
exec bash "$here/tests/run_all.sh" "$@"
