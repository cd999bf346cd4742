#!/usr/bin/env bash
# The GPU check, on a GPU machine (CUDA toolkit, python3 with PyTorch; no Node.js, no network),
# from the repository root, with bench/gpu-carry/ made by bench/gpu/pack.sh:
#   bash bench/gpu/check.sh
# 1. compiles the CUDA sources with this machine's nvcc for its own GPU (a compile error fails);
# 2. PyTorch's d2l recipe on the same GPU: nn.LSTM (cuDNN) 500 epochs, scratch 50 epochs;
# 3. bench/gpu/check.ts: CUDA vs CPU engine gradients, both kinds × 500 epochs, 1/4/8 concurrent
#    jobs, and one table with the ratios to PyTorch.
# Results (JSON and the log) go to $OUT when set (the device tool brings that folder back).
# Budget: ≈ 3–4 minutes on an H100/H200; every step has its own timeout.
# CHECK_ARGS (optional) is appended to the Node check's arguments: a dry run of this whole script on
# a machine without a GPU passes CHECK_ARGS="--cpu --epochs 2 --concurrency 1,2 --concurrency-epochs 1"
# (docs/gpu-engine.md, "The GPU check").
set -uo pipefail
cd "$(dirname "$0")/../.."
C=$PWD/bench/gpu-carry
W=$(mktemp -d)
R=${OUT:-$W}
mkdir -p "$R"
exec > >(tee "$R/gpu-check.log") 2>&1
[ -f "$C/node.xz" ] || { echo "bench/gpu-carry/ is missing: run bench/gpu/pack.sh on a development machine and carry it"; exit 2; }
status=0

echo "== machine"
nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap --format=csv,noheader || { echo "no GPU visible"; exit 2; }
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
"$NVCC" --version | tail -1
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())'

echo "== nvcc on this machine (native/cuda/lstm_cuda.cu, -arch=native)"
s=$(date +%s)
timeout 120 "$NVCC" -std=c++17 -O3 -arch=native -Inative/src -c native/cuda/lstm_cuda.cu -o "$W/lstm_cuda.o" && echo "compiled in $(( $(date +%s) - s )) s" || { echo "nvcc FAILED"; status=1; }

echo "== PyTorch reference (d2l recipe, same GPU)"
timeout 150 python3 bench/pytorch_reference.py --device cuda --kind concise --epochs 500 --json --quiet > "$R/torch-concise.json" || { echo "PyTorch concise run failed"; status=1; }
timeout 120 python3 bench/pytorch_reference.py --device cuda --kind scratch --epochs 50 --json --quiet > "$R/torch-scratch.json" || { echo "PyTorch scratch run failed"; status=1; }
cat "$R/torch-concise.json" "$R/torch-scratch.json"

echo "== CUDA engine"
xz -dc "$C/node.xz" > "$W/node" && chmod +x "$W/node"
tar -C "$W" -xJf "$C/libs.tar.xz"
export LSTM_NATIVE_ADDON=$C/lstm_native.node UV_THREADPOOL_SIZE=16
NODE=(env LD_LIBRARY_PATH="$W/lib" "$W/node")
if ! "${NODE[@]}" -e 'require(process.env.LSTM_NATIVE_ADDON)'; then
  echo "the addon does not load with this machine's C/C++ runtime: using the carried one"
  NODE=("$W/glibc/ld-linux-x86-64.so.2" --library-path "$W/lib:$W/glibc" "$W/node")
fi
timeout 240 "${NODE[@]}" "$C/check.mjs" --torch "$R/torch-scratch.json,$R/torch-concise.json" --out "$R/gpu-check.json" ${CHECK_ARGS:-} || status=1
echo "== done, status $status"
exit $status
