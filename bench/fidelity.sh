#!/usr/bin/env bash
# Full d2l runs (500 epochs, defaults, seed 1) of both kinds on the given engine; one JSON line per epoch
# into bench/results/fidelity-<engine>-<kind>.jsonl. Usage: bench/fidelity.sh tfjs|native
set -euo pipefail
cd "$(dirname "$0")/.."
engine=${1:?engine}
for kind in scratch concise; do
  out=bench/results/fidelity-$engine-$kind.jsonl
  start=$(date +%s)
  npx tsx src/cli/main.ts train --kind "$kind" --engine "$engine" --seed 1 --json > "$out.tmp"
  mv "$out.tmp" "$out"
  echo "$engine $kind: $(( $(date +%s) - start )) s wall"
done
