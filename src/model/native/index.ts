// The native engine: a Node-API addon (native/) with a fused LSTM forward/backward through time,
// on the CPU (OpenBLAS) or, in an addon built with nvcc, on a GPU (native/cuda/), run off the
// event loop. This module loads the addon, picks the device (DEVICE=cpu|cuda; by default a GPU
// when one is visible) and wraps it as the engine contract of model/engine.ts.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Batch } from '../../text/data.js';
import type { BatchesOptions, EngineFactory, Generator, LossAndGrads, LstmModel, ModelConfig, StepOptions, StepResult, Weights } from '../engine.js';
import { paramShapes } from '../params.js';

const ADDON_FILE = join('native', 'build', 'Release', 'lstm_native.node');

/** What the addon's info() reports. */
export interface NativeInfo {
  blas: string;
  /** openblas_get_config(), e.g. 'OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64'. */
  blasConfig: string;
  /** The kernel family OpenBLAS picked (OPENBLAS_CORETYPE overrides it). */
  blasCorename: string;
  blasThreads: number;
  procs: number;
  defaultThreads: number;
  /** The clone of the elementwise kernels that runs on this CPU. */
  kernelIsa: string;
  /** The per-step recurrent GEMM kernel for this CPU, e.g. 'avx512 8x32'. */
  gemmKernel: string;
  /** 'packed' (that kernel) or 'openblas' (LSTM_NATIVE_RECURRENT=blas). */
  recurrentGemm: string;
  /** The CUDA engine: whether the addon was built with it, and what GPUs it sees. */
  cuda: CudaInfo;
}

export interface CudaInfo {
  built: boolean;
  /** Visible GPUs (0 when none can be used; `error` says why). */
  devices: number;
  error?: string;
  /** Device 0's name and compute capability, e.g. 'NVIDIA H200', '9.0'. */
  name?: string;
  capability?: string;
  driverVersion?: number;
  runtimeVersion?: number;
}

/** Where the native engine trains: the CPU (OpenBLAS) or a GPU (the CUDA engine). */
export type NativeDevice = 'cpu' | 'cuda';

/** Accumulated wall time per phase of the training step (see native/src/lstm.h). */
export interface NativeProfile {
  steps: number;
  phasesMs: Record<string, number>;
}

interface NativeModelHandle {
  paramShapes(): Record<string, number[]>;
  setWeights(w: Record<string, Float32Array>): void;
  getWeights(): Record<string, Float32Array>;
  trainStep(X: Int32Array, Y: Int32Array, batchSize: number, numSteps: number, resetState: boolean, lr: number, clipTheta: number): Promise<StepResult>;
  lossAndGrads(
    X: Int32Array,
    Y: Int32Array,
    batchSize: number,
    numSteps: number,
    resetState: boolean,
  ): Promise<StepResult & { grads: Record<string, Float32Array> }>;
  /** The forward pass and loss only (ModelApi::forward_loss). */
  loss(X: Int32Array, Y: Int32Array, batchSize: number, numSteps: number, resetState: boolean): Promise<{ loss: number }>;
  trainBatches(
    X: Int32Array,
    Y: Int32Array,
    batches: number,
    batchSize: number,
    numSteps: number,
    resetFirst: boolean,
    resetEach: boolean,
    lr: number,
    clipTheta: number,
  ): Promise<{ loss: number }>;
  generateStep(token: number, h: Float32Array, c: Float32Array): Float32Array;
  generateStepAsync(token: number, h: Float32Array, c: Float32Array): Promise<Float32Array>;
  resetState(): void;
  profile(): NativeProfile;
  resetProfile(): void;
  dispose(): void;
  readonly busy: boolean;
  readonly threads: number;
  readonly device: string;
  readonly path: string;
}

interface NativeAddon {
  NativeModel: new (config: {
    kind: string;
    vocabSize: number;
    numHiddens: number;
    numLayers: number;
    threads: number;
    device: NativeDevice;
  }) => NativeModelHandle;
  info(): NativeInfo;
}

/** The native engine's factory, plus what the addon reports about BLAS, kernels and GPUs. */
export interface NativeEngineFactory extends EngineFactory {
  readonly device: NativeDevice;
  info(): NativeInfo;
}

export interface NativeEngineOptions {
  /** BLAS threads; default env NATIVE_THREADS, else the number of cores. */
  threads?: number;
  /** The .node file; default env LSTM_NATIVE_ADDON, else native/build/Release/lstm_native.node of this checkout. */
  addonPath?: string;
  /** 'cpu', 'cuda', or 'auto' (a GPU when one is visible); default env DEVICE, else 'auto'. */
  device?: NativeDevice | 'auto';
  /**
   * Offer trainBatches (several minibatches per call, loss read once per call). Default: on a GPU
   * only. On the CPU it computes exactly what per-minibatch steps compute (tests use that).
   */
  batchedCalls?: boolean;
}

/** The addon file: LSTM_NATIVE_ADDON, or native/build/Release/lstm_native.node above this module (src/ or dist/src/). */
export function nativeAddonPath(): string {
  const fromEnv = process.env.LSTM_NATIVE_ADDON;
  if (fromEnv) return resolve(fromEnv);
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, ADDON_FILE);
    if (existsSync(candidate)) return candidate;
    const parent = dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  // the expected location in a source checkout, for the error message
  return resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', ADDON_FILE);
}

/** Threads from the option, else NATIVE_THREADS, else the number of cores. */
export function nativeThreads(threads?: number): number {
  if (threads !== undefined) {
    if (!Number.isInteger(threads) || threads < 1) throw new Error(`native engine: threads must be a positive integer, got ${threads}`);
    return threads;
  }
  const env = process.env.NATIVE_THREADS;
  if (env !== undefined && env.trim() !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1) throw new Error(`NATIVE_THREADS must be a positive integer, got '${env}'`);
    return n;
  }
  return os.availableParallelism();
}

/** The device from the option, else DEVICE, else 'auto'; an unknown value throws. */
export function requestedDevice(device?: string): NativeDevice | 'auto' {
  const v = (device ?? process.env.DEVICE ?? '').trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  if (v === 'cpu' || v === 'cuda') return v;
  throw new Error(`DEVICE must be 'cpu', 'cuda' or 'auto', got '${device ?? process.env.DEVICE}'`);
}

const addons = new Map<string, NativeAddon>();

function loadAddon(path: string): NativeAddon {
  let addon = addons.get(path);
  if (!addon) {
    addon = createRequire(import.meta.url)(path) as NativeAddon;
    addons.set(path, addon);
  }
  return addon;
}

/** The native engine, or why it cannot be used (addon not built, or it fails to load). */
export function loadNativeEngine(opts: NativeEngineOptions = {}): { factory: NativeEngineFactory } | { error: string } {
  const path = opts.addonPath ? resolve(opts.addonPath) : nativeAddonPath();
  if (!existsSync(path)) {
    return { error: `addon not built: ${path} not found (run 'npm run build:native'; it needs g++ and libopenblas-dev)` };
  }
  let addon: NativeAddon;
  let threads: number;
  let requested: NativeDevice | 'auto';
  try {
    requested = requestedDevice(opts.device);
    addon = loadAddon(path);
    threads = nativeThreads(opts.threads);
  } catch (e) {
    return { error: `addon ${path} failed to load: ${(e as Error).message}` };
  }
  const cuda = addon.info().cuda;
  if (requested === 'cuda' && cuda.devices === 0) {
    return {
      error: `DEVICE=cuda but no GPU can be used: ${cuda.error ?? 'none visible'}${cuda.built ? '' : " (rebuild with nvcc on the PATH: 'npm run build:native')"}`,
    };
  }
  const device: NativeDevice = requested === 'auto' ? (cuda.devices > 0 ? 'cuda' : 'cpu') : requested;
  const factory: NativeEngineFactory = {
    name: 'native',
    backend: deviceBackend(device),
    device,
    info: () => addon.info(),
    async createModel(config: ModelConfig, weights: Weights): Promise<LstmModel> {
      return new NativeLstmModel(addon, config, weights, threads, device, opts.batchedCalls ?? device === 'cuda');
    },
  };
  return { factory };
}

/** The backend name a job records: 'openblas' (CPU) or 'cuda'. */
function deviceBackend(device: NativeDevice): string {
  return device === 'cuda' ? 'cuda' : 'openblas';
}

/** The LstmModel of the native engine. Calls on one model run one at a time, in call order. */
export class NativeLstmModel implements LstmModel {
  /**
   * Generation steps of more multiply-adds than this run off the event loop (an AsyncWorker);
   * smaller ones (the default model: ≈ 0.5 M) run inline, which is faster than a thread hop.
   */
  static generateAsyncAbove = 1 << 20;

  readonly engine = 'native' as const;
  readonly backend: string;
  readonly config: ModelConfig;
  /**
   * GPU models train several minibatches per call (loss read back once per call); CPU models
   * leave it undefined, so the trainer steps them one minibatch at a time.
   */
  readonly trainBatches?: (batches: Batch[], opts: BatchesOptions) => Promise<{ loss: number }>;
  private readonly handle: NativeModelHandle;
  private readonly shapes: Record<string, number[]>;
  private tail: Promise<unknown> = Promise.resolve();
  private disposed = false;

  constructor(addon: NativeAddon, config: ModelConfig, weights: Weights, threads: number, device: NativeDevice = 'cpu', batchedCalls = device === 'cuda') {
    if (config.kind === 'scratch' && config.numLayers !== 1) throw new Error(`native engine: the scratch kind has 1 layer, got numLayers ${config.numLayers}`);
    this.config = { ...config };
    this.shapes = paramShapes(config);
    this.backend = deviceBackend(device);
    this.handle = new addon.NativeModel({
      kind: config.kind,
      vocabSize: config.vocabSize,
      numHiddens: config.numHiddens,
      numLayers: config.numLayers,
      threads,
      device,
    });
    if (batchedCalls) this.trainBatches = (batches, opts) => this.trainBatchesInOneCall(batches, opts);
    this.setWeights(weights);
  }

  /** 'cpu' or 'cuda'. */
  get device(): NativeDevice {
    return this.handle.device as NativeDevice;
  }

  /** How the last training step ran: 'cpu', 'cuda-steps' or 'cuda-persistent' (docs/gpu-engine.md). */
  get path(): string {
    return this.handle.path;
  }

  get threads(): number {
    return this.handle.threads;
  }

  /** Runs fn after every earlier call on this model has settled. */
  private serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const run = this.tail.then(() => {
      if (this.disposed) throw new Error('native engine: model is disposed');
      return fn();
    });
    this.tail = run.catch(() => undefined);
    return run;
  }

  private checkBatch(batch: Batch): void {
    const n = batch.batchSize * batch.numSteps;
    if (!Number.isInteger(batch.batchSize) || !Number.isInteger(batch.numSteps) || batch.batchSize < 1 || batch.numSteps < 1) {
      throw new Error(`native engine: bad batch shape ${batch.batchSize}×${batch.numSteps}`);
    }
    if (batch.X.length !== n || batch.Y.length !== n) throw new Error(`native engine: X and Y must have batchSize·numSteps = ${n} tokens`);
  }

  trainStep(batch: Batch, opts: StepOptions): Promise<StepResult> {
    return this.serial(async () => {
      this.checkBatch(batch);
      const r = await this.handle.trainStep(batch.X, batch.Y, batch.batchSize, batch.numSteps, opts.resetState, opts.lr, opts.clipTheta);
      return { loss: r.loss, gradNorm: r.gradNorm };
    });
  }

  private trainBatchesInOneCall(batches: Batch[], opts: BatchesOptions): Promise<{ loss: number }> {
    return this.serial(async () => {
      if (batches.length === 0) throw new Error('native engine: trainBatches needs at least one minibatch');
      const { batchSize, numSteps } = batches[0];
      const n = batchSize * numSteps;
      const X = new Int32Array(n * batches.length);
      const Y = new Int32Array(n * batches.length);
      batches.forEach((b, k) => {
        this.checkBatch(b);
        if (b.batchSize !== batchSize || b.numSteps !== numSteps) throw new Error('native engine: trainBatches needs minibatches of one shape');
        X.set(b.X, k * n);
        Y.set(b.Y, k * n);
      });
      const r = await this.handle.trainBatches(X, Y, batches.length, batchSize, numSteps, opts.resetFirst, opts.resetEach, opts.lr, opts.clipTheta);
      return { loss: r.loss };
    });
  }

  lossAndGrads(batch: Batch, opts: { resetState: boolean }): Promise<LossAndGrads> {
    return this.serial(async () => {
      this.checkBatch(batch);
      const r = await this.handle.lossAndGrads(batch.X, batch.Y, batch.batchSize, batch.numSteps, opts.resetState);
      return { loss: r.loss, grads: this.named(r.grads) };
    });
  }

  loss(batch: Batch, opts: { resetState: boolean }): Promise<{ loss: number }> {
    return this.serial(async () => {
      this.checkBatch(batch);
      const r = await this.handle.loss(batch.X, batch.Y, batch.batchSize, batch.numSteps, opts.resetState);
      return { loss: r.loss };
    });
  }

  generator(): Generator {
    const { vocabSize: V, numHiddens: H, numLayers: L } = this.config;
    const h = new Float32Array(L * H);
    const c = new Float32Array(L * H);
    // multiply-adds of one step: the gates of every layer, then the output layer
    let work = H * V;
    for (let l = 0; l < L; l++) work += 4 * H * ((l === 0 ? 1 : H) + H);
    const inline = work <= NativeLstmModel.generateAsyncAbove;
    let disposed = false;
    return {
      feed: (token: number) =>
        this.serial(() => {
          if (disposed) throw new Error('native engine: generator is disposed');
          return inline ? this.handle.generateStep(token, h, c) : this.handle.generateStepAsync(token, h, c);
        }),
      dispose: () => {
        disposed = true;
      },
    };
  }

  getWeights(): Weights {
    if (this.disposed) throw new Error('native engine: model is disposed');
    return this.named(this.handle.getWeights());
  }

  setWeights(weights: Weights): void {
    if (this.disposed) throw new Error('native engine: model is disposed');
    const data: Record<string, Float32Array> = {};
    for (const [name, shape] of Object.entries(this.shapes)) {
      const t = weights[name];
      if (!t) throw new Error(`native engine: weight '${name}' is missing`);
      if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
        throw new Error(`native engine: weight '${name}' has shape [${t.shape}], expected [${shape}]`);
      }
      data[name] = t.data;
    }
    this.handle.setWeights(data);
  }

  /** Wall time per phase of the training steps so far (for profiling). */
  profile(): NativeProfile {
    return this.handle.profile();
  }

  resetProfile(): void {
    this.handle.resetProfile();
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.handle.dispose();
  }

  private named(arrays: Record<string, Float32Array>): Weights {
    const out: Weights = {};
    for (const [name, shape] of Object.entries(this.shapes)) out[name] = { shape: [...shape], data: arrays[name] };
    return out;
  }
}
