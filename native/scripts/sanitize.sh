#!/usr/bin/env bash
# Builds the addon with AddressSanitizer + UndefinedBehaviorSanitizer (into native/build/sanitize/,
# ignored by git; the normal build is left alone) and runs the native engine's tests under it.
#   native/scripts/sanitize.sh [test files…]     (default: test/model/native/*.test.ts)
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=native/build/sanitize
rm -rf "$dir"
mkdir -p "$dir"
cp -r native/binding.gyp native/src "$dir/"
nodedir="${npm_config_nodedir:-/usr}"
(cd "$dir" && node ../../../node_modules/node-gyp/bin/node-gyp.js rebuild --nodedir="$nodedir" -- -Dsanitize=1 >build.log 2>&1) || {
  cat "$dir/build.log"
  exit 1
}
# the approximations of fastmath.h, instrumented too
g++ -std=c++17 -O2 -fsanitize=address,undefined -fno-sanitize-recover=undefined native/test/fastmath_check.cc -o "$dir/fastmath_check"
"$dir/fastmath_check"
export LSTM_NATIVE_ADDON="$PWD/$dir/build/Release/lstm_native.node"
# Node itself is not instrumented: the ASan runtime is preloaded; leaks of V8/Node at exit are not ours
export LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libubsan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=0"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
if [ $# -eq 0 ]; then set -- test/model/native/*.test.ts; fi
echo "sanitized addon: $LSTM_NATIVE_ADDON"
node --import tsx --test --test-concurrency=1 "$@"
