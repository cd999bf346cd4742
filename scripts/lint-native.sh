#!/usr/bin/env bash
# native/ (C++ and CUDA) against .clang-format: fails on any file clang-format would change.
# .ci/run installs clang-format; elsewhere, without it, this says so and checks nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v clang-format >/dev/null; then
  echo "lint-native: clang-format is not installed (apt-get install clang-format); native/ not checked"
  exit 0
fi
mapfile -t files < <(git ls-files 'native/*.cc' 'native/*.h' 'native/*.cu' 'native/*.cuh')
clang-format --dry-run --Werror "${files[@]}"
echo "lint-native: ${#files[@]} files match .clang-format"
