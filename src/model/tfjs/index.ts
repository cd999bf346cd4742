// The tfjs engine (docs/tfjs-engine.md): both kinds train through the fused sequence op with a hand-derived
// backward; the seed-like reference implementations stay available for tests and benchmarks.
import type { EngineFactory, LstmModel, ModelConfig, Weights } from '../engine.js';
import { initTfjsBackend, type Logger } from './backend.js';
import { FusedLstmModel } from './fusedModel.js';
import { ReferenceModel } from './reference.js';

export { initTfjsBackend, TfjsBackendUnavailableError, type TfjsBackendName } from './backend.js';
export { FusedLstmModel } from './fusedModel.js';
export { ReferenceModel } from './reference.js';

/** The tfjs engine on the backend chosen for this process (see backend.ts). */
export async function tfjsEngine(log?: Logger): Promise<EngineFactory> {
  const backend = await initTfjsBackend(log);
  return {
    name: 'tfjs',
    backend,
    createModel: async (config: ModelConfig, weights: Weights): Promise<LstmModel> => new FusedLstmModel(config, weights, backend),
  };
}

/**
 * The reference path as an LstmModel: scratch → the seed's `lstm` and 14 tensors, concise →
 * tf.layers.lstm + dense; gradients by tfjs autograd. Same contract as the engine's models.
 */
export async function createReferenceModel(config: ModelConfig, weights: Weights, log?: Logger): Promise<LstmModel> {
  const backend = await initTfjsBackend(log);
  return new ReferenceModel(config, weights, backend);
}
