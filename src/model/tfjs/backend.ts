// Chooses the TensorFlow.js backend once per process (docs/tfjs-engine.md): tfjs-node-gpu when installed and a
// GPU is visible, tfjs-node when installed, else WebAssembly, else the plain-JS CPU backend.
// TFJS_BACKEND forces one. tfjs-node(-gpu) are optional dependencies, so they are loaded by name at
// run time and their absence is normal.
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';
import * as tf from '@tensorflow/tfjs';

export type TfjsBackendName = 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
export type Logger = (line: string) => void;

export class TfjsBackendUnavailableError extends Error {}

const ALIASES: Record<string, TfjsBackendName> = {
  'tensorflow-gpu': 'tensorflow-gpu',
  'tfjs-node-gpu': 'tensorflow-gpu',
  'node-gpu': 'tensorflow-gpu',
  gpu: 'tensorflow-gpu',
  tensorflow: 'tensorflow',
  'tfjs-node': 'tensorflow',
  node: 'tensorflow',
  wasm: 'wasm',
  cpu: 'cpu',
};

let chosen: Promise<TfjsBackendName> | undefined;

/** The backend for this process, chosen on the first call; later calls return the same choice. */
export function initTfjsBackend(log: Logger = (line) => console.error(line)): Promise<TfjsBackendName> {
  if (!chosen) {
    chosen = chooseBackend(process.env.TFJS_BACKEND, log);
    // a failed forced choice is reported to this caller, not cached for every later one
    chosen.catch(() => (chosen = undefined));
  }
  return chosen;
}

async function chooseBackend(forced: string | undefined, log: Logger): Promise<TfjsBackendName> {
  const want = (forced ?? '').trim().toLowerCase();
  if (want !== '') {
    const name = ALIASES[want];
    if (!name) {
      throw new TfjsBackendUnavailableError(`unknown TFJS_BACKEND '${forced}' (use tensorflow-gpu, tensorflow, wasm or cpu)`);
    }
    const error = await tryBackend(name);
    if (error !== null) {
      const fix =
        name === 'tensorflow-gpu' || name === 'tensorflow'
          ? `install ${name === 'tensorflow' ? '@tensorflow/tfjs-node' : '@tensorflow/tfjs-node-gpu (CUDA 11.2 + cuDNN 8.1)'}, or `
          : '';
      throw new TfjsBackendUnavailableError(
        `TFJS_BACKEND=${forced} but backend ${name} is unavailable: ${error} (${fix}unset TFJS_BACKEND to choose automatically)`,
      );
    }
    log(`lstm-trainer: tfjs backend ${name} (forced by TFJS_BACKEND)`);
    return name;
  }
  const skipped: string[] = [];
  const order: TfjsBackendName[] = gpuVisible() ? ['tensorflow-gpu', 'tensorflow', 'wasm', 'cpu'] : ['tensorflow', 'wasm', 'cpu'];
  for (const name of order) {
    const error = await tryBackend(name);
    if (error === null) {
      log(`lstm-trainer: tfjs backend ${name}${skipped.length ? ` (unavailable: ${skipped.join('; ')})` : ''}`);
      return name;
    }
    skipped.push(`${name}: ${error}`);
  }
  throw new TfjsBackendUnavailableError(`no tfjs backend could start: ${skipped.join('; ')}`);
}

/** null when `name` is now the active backend, else why not. */
async function tryBackend(name: TfjsBackendName): Promise<string | null> {
  try {
    switch (name) {
      case 'tensorflow-gpu':
        if (!gpuVisible()) return 'no GPU visible';
        return await useNode('@tensorflow/tfjs-node-gpu');
      case 'tensorflow':
        return await useNode('@tensorflow/tfjs-node');
      case 'wasm':
        return await useWasm();
      case 'cpu':
        return (await tf.setBackend('cpu')) ? null : 'tf.setBackend(cpu) failed';
    }
  } catch (e) {
    return firstLine(e);
  }
}

async function useNode(pkg: string): Promise<string | null> {
  try {
    // a variable specifier: the package is optional and has no types here
    const specifier: string = pkg;
    await import(specifier);
  } catch (e) {
    const code = (e as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return `${pkg} is not installed`;
    return `${pkg} failed to load: ${firstLine(e)}`;
  }
  // tfjs-node registers 'tensorflow' on the tfjs-core it resolves; a second copy of tfjs-core would
  // leave ours without it
  if (tf.findBackendFactory('tensorflow') == null)
    return `${pkg} loaded but registered no 'tensorflow' backend with this @tensorflow/tfjs (duplicate tfjs-core?)`;
  return (await tf.setBackend('tensorflow')) ? null : 'tf.setBackend(tensorflow) failed';
}

async function useWasm(): Promise<string | null> {
  const before = processListeners();
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  // the .wasm binaries ship in the package's dist/; point the loader there so nothing is fetched
  const require = createRequire(import.meta.url);
  const dist = join(dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  if (!existsSync(join(dist, 'tfjs-backend-wasm-simd.wasm'))) return `no .wasm files in ${dist}`;
  wasm.setWasmPaths(dist + sep);
  const ok = await tf.setBackend('wasm');
  // Emscripten's loader installs process handlers that rethrow every uncaught exception and
  // rejection from inside its minified bundle, so a crash report prints that whole file; give the
  // process back Node's own handling (and whatever handlers the service installs)
  const emitter: NodeJS.EventEmitter = process;
  for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
    const known: unknown[] = before[event];
    for (const listener of emitter.listeners(event) as Array<(...args: unknown[]) => void>) {
      if (!known.includes(listener)) emitter.removeListener(event, listener);
    }
  }
  return ok ? null : 'tf.setBackend(wasm) failed (see the warning above)';
}

function processListeners() {
  return { uncaughtException: process.listeners('uncaughtException'), unhandledRejection: process.listeners('unhandledRejection') };
}

/** A GPU the CUDA driver exposes, unless CUDA_VISIBLE_DEVICES hides them all. */
function gpuVisible(): boolean {
  const visible = process.env.CUDA_VISIBLE_DEVICES;
  if (visible !== undefined && (visible.trim() === '' || visible.trim() === '-1')) return false;
  try {
    return readdirSync('/proc/driver/nvidia/gpus').length > 0;
  } catch {
    return existsSync('/dev/nvidia0');
  }
}

function firstLine(e: unknown): string {
  return String(e instanceof Error ? e.message : e).split('\n')[0];
}
