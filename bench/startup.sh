#!/usr/bin/env bash
# Process start-up: seconds from spawn to ready for `lstm-trainer --version`, `worker` (its
# "ready" log line) and `api` (its "ready" line, HTTP and gRPC listening), run from source as the
# tests run them (node --import tsx). Every test that starts a service pays these, so they bound
# the suite's time. With another checkout as argument, the two are timed in turn, round by round
# (interleaved: a ratio from one run, not two absolute times on a shared machine):
#   bash bench/startup.sh [OTHER_CHECKOUT] [ROUNDS]
# Needs Redis at REDIS_URL (default redis://127.0.0.1:6379); each start uses its own queue prefix
# and writes nothing to Redis but its worker registration, which BullMQ expires.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
other=${1:-}
rounds=${2:-5}
redis=${REDIS_URL:-redis://127.0.0.1:6379}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# seconds until the command's output has a ready line (--version: until it exits)
time_start() {
  local dir=$1 cmd=$2
  local port=$((20000 + RANDOM % 20000))
  local t0 t1 pid
  t0=$(date +%s.%N)
  if [ "$cmd" = --version ]; then
    (cd "$dir" && node --import tsx src/cli/main.ts --version > /dev/null)
  else
    (cd "$dir" && exec env QUEUE_PREFIX="startup-bench-$RANDOM" HTTP_PORT=$port GRPC_PORT=$((port + 1)) REDIS_URL="$redis" \
      node --import tsx src/cli/main.ts "$cmd" > "$log" 2>&1) &
    pid=$!
    until grep -q '"ready":' "$log"; do
      kill -0 $pid 2> /dev/null || { cat "$log" >&2; echo "$cmd in $dir exited before it was ready" >&2; exit 1; }
      sleep 0.02
    done
  fi
  t1=$(date +%s.%N)
  if [ "$cmd" != --version ]; then kill $pid && wait $pid 2> /dev/null || true; fi
  printf "%.2f" "$(echo "$t1 - $t0" | bc)"
}

for cmd in --version worker api; do
  time_start "$here" $cmd > /dev/null # warm tsx's transform cache
  [ -z "$other" ] || time_start "$other" $cmd > /dev/null
  for r in $(seq "$rounds"); do
    line="$cmd round $r: this checkout $(time_start "$here" $cmd) s"
    [ -z "$other" ] || line="$line, $other $(time_start "$other" $cmd) s"
    echo "$line"
  done
done
