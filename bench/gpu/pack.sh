#!/usr/bin/env bash
# Prepares, on a development machine, what bench/gpu/check.sh needs on a GPU machine that has no
# Node.js and no network, into bench/gpu-carry/ (git-ignored; ≈ 35 MB):
#   lstm_native.node  the addon with the CUDA engine (sm_80 + sm_90 code, static cudart)
#   check.mjs         bench/gpu/check.ts and the project code it uses, bundled (esbuild)
#   node.xz           this machine's node binary
#   libs.tar.xz       lib/ (OpenBLAS and its Fortran runtime, for the CPU engine the gradient check
#                     compares with) and glibc/ (this machine's C/C++ runtime and loader, used only
#                     if the addon does not load with the GPU machine's own)
# Then, with the device tool: run `bash bench/gpu/check.sh` with carry ["bench/gpu-carry"].
set -euo pipefail
cd "$(dirname "$0")/../.."
out=bench/gpu-carry
rm -rf "$out"
mkdir -p "$out/lib" "$out/glibc"

npm run -s build:native
node -e "const i = require('./native/build/Release/lstm_native.node').info(); if (!i.cuda.built) { console.error('the addon was built without the CUDA engine (is nvcc on the PATH?)'); process.exit(1) }"
cp native/build/Release/lstm_native.node "$out/"
npx esbuild bench/gpu/check.ts --bundle --platform=node --format=esm --target=node20 --log-level=warning \
  --external:@tensorflow/* --outfile="$out/check.mjs" \
  --banner:js="import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);"
xz -T0 -6 -c "$(command -v node)" > "$out/node.xz"

libdir=/lib/x86_64-linux-gnu
for l in libopenblas.so.0 libgfortran.so.5 libquadmath.so.0; do cp -L "$libdir/$l" "$out/lib/"; done
for l in libc.so.6 libm.so.6 libdl.so.2 libpthread.so.0 librt.so.1 libstdc++.so.6 libgcc_s.so.1; do cp -L "$libdir/$l" "$out/glibc/"; done
cp -L /lib64/ld-linux-x86-64.so.2 "$out/glibc/"
tar -C "$out" -cJf "$out/libs.tar.xz" lib glibc
rm -rf "$out/lib" "$out/glibc"
du -sh "$out"/* "$out"
