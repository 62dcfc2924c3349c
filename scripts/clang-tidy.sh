#!/bin/bash
# Runs clang-tidy (.clang-tidy at the top) over peersock's own sources.
#   scripts/clang-tidy.sh [BUILD_DIR] [FILE...]
# BUILD_DIR (default: build) provides compile_commands.json; FILEs default to
# every src/**/*.cpp. Also: `ninja -C build clang-tidy`. Exit status 1 when
# clang-tidy reports anything.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$top/build}
shift || true
[[ -f $build/compile_commands.json ]] || { echo "no $build/compile_commands.json (meson setup first)" >&2; exit 2; }
tidy=$(command -v clang-tidy || command -v clang-tidy-14) || { echo "clang-tidy not found" >&2; exit 2; }
if (($# == 0)); then
  mapfile -t files < <(cd "$top" && git ls-files 'src/*.cpp' | sed "s|^|$top/|")
else
  files=("$@")
fi
# GCC-only flags in compile_commands.json are dropped for clang.
log=$(mktemp)
trap 'rm -f "$log"' EXIT
printf '%s\0' "${files[@]}" |
  xargs -0 -n 4 -P "$(nproc)" "$tidy" -p "$build" --quiet --extra-arg=-Wno-unknown-warning-option >"$log" 2>/dev/null || true
# Headers seen through a layer's include tree are named by their real path;
# a header's finding is counted once, however many files include it.
sed -i -E "s|[^ :]*/src/layers/[a-z_]+/peersock/|$top/include/peersock/|" "$log"
cat "$log"
count=$(grep -E ': (warning|error): ' "$log" | sort -u | wc -l)
echo "clang-tidy: $count finding(s) in ${#files[@]} file(s)" >&2
((count == 0))
