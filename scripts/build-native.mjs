// Builds the native engine addon (native/) with node-gyp. Runs at `npm ci`/`npm install`:
// an install where the addon cannot build (no compiler, no BLAS headers) must still succeed,
// so without --strict a failure prints one line and exits 0; the tfjs engine is used then.
//
// Where nvcc is found (NVCC, PATH, or /usr/local/cuda/bin; LSTM_CUDA=0 skips it), the CUDA engine
// (native/cuda/) is compiled first and linked into the same addon with the static cudart, for the
// GPU architectures in CUDA_ARCHS (default "80,90": A100 and H100/H200 code, plus PTX of the
// newest for later GPUs). With --strict a CUDA compile error fails the build (CI); without it the
// addon is built for the CPU alone, with one line saying why.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const strict = process.argv.includes('--strict');
const nativeDir = join(root, 'native');

if (!existsSync(join(nativeDir, 'binding.gyp'))) {
  if (strict) {
    console.error('native/binding.gyp is missing');
    process.exit(1);
  }
  process.exit(0);
}

/** nvcc's path, or undefined. */
function findNvcc() {
  if (process.env.LSTM_CUDA === '0') return undefined;
  const candidates = [process.env.NVCC, 'nvcc', '/usr/local/cuda/bin/nvcc'].filter(Boolean);
  for (const c of candidates) {
    const r = spawnSync(c, ['--version'], { encoding: 'utf8' });
    if (r.status === 0) return c;
  }
  return undefined;
}

/** The directory with libcudart_static.a, or undefined. */
function findCudaLib() {
  const homes = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda'].filter(Boolean);
  for (const h of homes) {
    for (const sub of ['lib64', 'lib', 'targets/x86_64-linux/lib', 'targets/sbsa-linux/lib']) {
      if (existsSync(join(h, sub, 'libcudart_static.a'))) return join(h, sub);
    }
  }
  return undefined;
}

/** nvcc -c native/cuda/lstm_cuda.cu → { obj, lib } or { error }. */
function buildCuda(nvcc) {
  const lib = findCudaLib();
  if (!lib) return { error: 'libcudart_static.a not found (set CUDA_HOME)' };
  const outDir = join(nativeDir, 'build-cuda');
  mkdirSync(outDir, { recursive: true });
  const obj = join(outDir, 'lstm_cuda.o');
  const archs = (process.env.CUDA_ARCHS ?? '80,90')
    .split(',')
    .map((a) => a.trim())
    .filter(Boolean);
  const gencode = archs.flatMap((a) => ['-gencode', `arch=compute_${a},code=sm_${a}`]);
  gencode.push('-gencode', `arch=compute_${archs[archs.length - 1]},code=compute_${archs[archs.length - 1]}`);
  const args = [
    '-std=c++17',
    '-O3',
    '-Xcompiler',
    '-fPIC',
    '-Xcompiler',
    '-Wall',
    ...gencode,
    '-I',
    join(nativeDir, 'src'),
    '-c',
    join(nativeDir, 'cuda', 'lstm_cuda.cu'),
    '-o',
    obj,
  ];
  console.log(`lstm-trainer: compiling the CUDA engine: ${nvcc} ${args.join(' ')}`);
  const r = spawnSync(nvcc, args, { stdio: strict ? 'inherit' : 'pipe', encoding: 'utf8' });
  if (r.status !== 0) return { error: `nvcc failed (exit ${r.status})${r.stderr ? `: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}` };
  return { obj, lib };
}

const gypArgs = [];
const nvcc = findNvcc();
if (nvcc) {
  const cuda = buildCuda(nvcc);
  if ('error' in cuda) {
    const msg = `lstm-trainer: CUDA engine not built: ${cuda.error}`;
    if (strict) {
      console.error(msg);
      process.exit(1);
    }
    console.warn(`${msg}; building the CPU engine alone.`);
  } else {
    gypArgs.push('--', `-Dcuda_obj=${cuda.obj}`, `-Dcuda_lib=${cuda.lib}`);
  }
} else if (strict) {
  console.log('lstm-trainer: nvcc not found: building the CPU engine alone (no CUDA engine).');
}

const gyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const args = existsSync(gyp) ? [gyp, 'rebuild', ...gypArgs] : [];
const r = args.length
  ? spawnSync(process.execPath, args, { cwd: nativeDir, stdio: strict ? 'inherit' : 'pipe', encoding: 'utf8' })
  : spawnSync('npx', ['--no-install', 'node-gyp', 'rebuild', ...gypArgs], { cwd: nativeDir, stdio: strict ? 'inherit' : 'pipe', encoding: 'utf8' });
if (r.status !== 0) {
  const msg = 'lstm-trainer: native engine addon not built (needs g++ and libopenblas-dev); the tfjs engine will be used.';
  if (strict) {
    console.error(msg);
    process.exit(r.status ?? 1);
  }
  console.warn(msg);
}
