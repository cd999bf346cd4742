// Engine selection: ENGINE=native|tfjs; the default is native where the addon loads. The native
// engine trains on a GPU when its addon was built with CUDA and one is visible; DEVICE=cpu|cuda
// overrides (DEVICE=cuda without a usable GPU is an error, never a silent fallback).
import type { EngineFactory, EngineName } from './engine.js';

export class EngineUnavailableError extends Error {}

let cached: Promise<EngineFactory> | undefined;

export type Logger = (line: string) => void;

/** The engine for this process, chosen once. `requested` overrides the ENGINE variable. */
export function selectEngine(requested?: string, log: Logger = (l) => console.error(l)): Promise<EngineFactory> {
  if (requested === undefined && cached) return cached;
  const p = chooseEngine(requested ?? process.env.ENGINE, log);
  if (requested === undefined) cached = p;
  return p;
}

async function chooseEngine(requested: string | undefined, log: Logger): Promise<EngineFactory> {
  const name = (requested ?? '').trim().toLowerCase() as EngineName | '';
  if (name !== '' && name !== 'native' && name !== 'tfjs') {
    throw new EngineUnavailableError(`unknown engine '${requested}' (ENGINE must be 'native' or 'tfjs')`);
  }
  if (name !== 'tfjs') {
    const { loadNativeEngine, requestedDevice } = await import('./native/index.js');
    let device: ReturnType<typeof requestedDevice>;
    try {
      device = requestedDevice();
    } catch (e) {
      throw new EngineUnavailableError((e as Error).message);
    }
    const native = loadNativeEngine();
    if ('factory' in native) {
      log(`lstm-trainer: engine native (backend ${native.factory.backend})`);
      return native.factory;
    }
    if (name === 'native') throw new EngineUnavailableError(`ENGINE=native but the native engine is unavailable: ${native.error}`);
    if (device === 'cuda') throw new EngineUnavailableError(`DEVICE=cuda but the native engine is unavailable: ${native.error}`);
    log(`lstm-trainer: native engine unavailable (${native.error}); using tfjs`);
  }
  const { tfjsEngine, TfjsBackendUnavailableError } = await import('./tfjs/index.js');
  let tfjs: Awaited<ReturnType<typeof tfjsEngine>>;
  try {
    tfjs = await tfjsEngine();
  } catch (e) {
    if (e instanceof TfjsBackendUnavailableError) throw new EngineUnavailableError(e.message);
    throw e;
  }
  log(`lstm-trainer: engine tfjs (backend ${tfjs.backend})`);
  return tfjs;
}
