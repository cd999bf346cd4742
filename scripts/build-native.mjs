// Builds the native engine addon (native/) with node-gyp. Runs at `npm ci`/`npm install`:
// an install where the addon cannot build (no compiler, no BLAS headers) must still succeed,
// so without --strict a failure prints one line and exits 0; the tfjs engine is used then.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
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
const gyp = join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
const args = existsSync(gyp) ? [gyp, 'rebuild'] : [];
const r = args.length
  ? spawnSync(process.execPath, args, { cwd: nativeDir, stdio: strict ? 'inherit' : 'pipe', encoding: 'utf8' })
  : spawnSync('npx', ['--no-install', 'node-gyp', 'rebuild'], { cwd: nativeDir, stdio: strict ? 'inherit' : 'pipe', encoding: 'utf8' });
if (r.status !== 0) {
  const msg = 'lstm-trainer: native engine addon not built (needs g++ and libopenblas-dev); the tfjs engine will be used.';
  if (strict) {
    console.error(msg);
    process.exit(r.status ?? 1);
  }
  console.warn(msg);
}
