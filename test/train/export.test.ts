// Exports checked by the tools that read them: TensorFlow.js's own loadLayersModel, ONNX Runtime
// (onnxruntime-node) running the ONNX graph, and PyTorch's load_state_dict on the seed's models
// (Debian's python3-torch). Each loaded model's logits over a
// token sequence must equal the float64 reference's (src/model/reference.ts) on the same weights.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, it } from 'node:test';
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import type { ModelConfig, Weights } from '../../src/model/engine.js';
import { initParams } from '../../src/model/params.js';
import { logitsReference, referenceModel } from '../../src/model/reference.js';
import { Rng } from '../../src/text/rng.js';
import { deserializeCheckpoint, type Checkpoint } from '../../src/train/checkpoint.js';
import { exportModel, toSafetensors } from '../../src/train/export.js';
import { ModelFileError, readInitModel } from '../../src/train/import.js';
import { selectEngine } from '../../src/model/engines.js';
import { SpecError } from '../../src/train/spec.js';
import { Trainer } from '../../src/train/trainer.js';
import { parseJobSpec } from '../../src/train/spec.js';

const CONFIGS: ModelConfig[] = [
  { kind: 'scratch', vocabSize: 9, numHiddens: 6, numLayers: 1 },
  { kind: 'concise', vocabSize: 9, numHiddens: 6, numLayers: 1 },
  { kind: 'concise', vocabSize: 7, numHiddens: 5, numLayers: 2 },
];
const TOKENS = [3, 1, 4, 1, 5, 2, 6, 0, 2];
const label = (c: ModelConfig) => `${c.kind} ${c.numLayers} layer(s)`;

/** A checkpoint with weights of some spread (the scratch init's 0.01 would hide a wrong gate order). */
function checkpoint(config: ModelConfig): Checkpoint {
  const weights: Weights = initParams(config, new Rng(3));
  const rng = new Rng(4);
  for (const t of Object.values(weights)) for (let i = 0; i < t.data.length; i++) t.data[i] = rng.uniform(-0.6, 0.6);
  const vocab = ['<unk>', ' ', 'e', 't', 'a', 'i', 'n', 'o', 's'].slice(0, config.vocabSize);
  return {
    spec: parseJobSpec({ model: { kind: config.kind, numHiddens: config.numHiddens, numLayers: config.numLayers } }),
    config,
    vocab,
    epoch: 7,
    rngState: new Rng(1).state,
    elapsedMs: 1234,
    perplexity: 3.25,
    engine: 'native',
    backend: 'openblas',
    weights,
  };
}

function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / den;
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'lstm-export-'));
after(() => rmSync(dir, { recursive: true, force: true }));

describe('export: tfjs LayersModel, loaded by tf.loadLayersModel', () => {
  for (const config of CONFIGS) {
    it(`${label(config)}: sigmoid recurrent activation, metadata, logits equal the reference`, async (t) => {
      const ckpt = checkpoint(config);
      const out = await exportModel(ckpt, 'tfjs');
      assert.deepEqual(
        out.files.map((f) => f.name),
        ['model.json', 'weights.bin'],
      );
      const manifest = JSON.parse(out.files[0].data.toString('utf8'));
      assert.equal(manifest.format, 'layers-model');
      assert.deepEqual(manifest.weightsManifest[0].paths, ['weights.bin']);
      assert.equal(manifest.userDefinedMetadata.epoch, '7');
      assert.deepEqual(JSON.parse(manifest.userDefinedMetadata.vocab), ckpt.vocab);
      const lstmLayers = manifest.modelTopology.config.layers.filter((l: { class_name: string }) => l.class_name === 'LSTM');
      assert.equal(lstmLayers.length, config.numLayers);
      for (const l of lstmLayers) assert.equal(l.config.recurrent_activation, 'sigmoid');
      // the weights' names are the layers' own (not tfjs's per-process unique variable names)
      const names = manifest.weightsManifest[0].weights.map((s: { name: string }) => s.name);
      assert.deepEqual(names.slice(-2), ['dense/kernel', 'dense/bias']);
      for (let l = 0; l < config.numLayers; l++) assert.ok(names.includes(`lstm_l${l}/recurrent_kernel`), names.join(','));
      const bin = out.files[1].data;
      const model = await tf.loadLayersModel(
        tf.io.fromMemory({
          modelTopology: manifest.modelTopology,
          weightSpecs: manifest.weightsManifest[0].weights,
          weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength),
        }),
      );
      const x = tf.oneHot(tf.tensor2d([TOKENS], [1, TOKENS.length], 'int32'), config.vocabSize).toFloat();
      const y = model.predict(x) as tf.Tensor;
      const got = (await y.data()) as Float32Array;
      tf.dispose([x, y]);
      model.dispose();
      const want = logitsReference(referenceModel(config, ckpt.weights), TOKENS);
      const flat = Float64Array.from(want.flatMap((r) => [...r]));
      assert.equal(got.length, flat.length);
      const e = maxRelDiff(got, flat);
      assert.ok(e < 1e-4, `logits differ: ${e}`);
      t.diagnostic(`tfjs ${label(config)}: max relative logit difference to the float64 reference ${e.toExponential(2)}`);
    });
  }
});

describe('export: ONNX, run by ONNX Runtime', () => {
  for (const config of CONFIGS) {
    it(`${label(config)}: logits equal the reference; the state steps the model a token at a time`, async (t) => {
      const ckpt = checkpoint(config);
      const out = await exportModel(ckpt, 'onnx');
      const session = await ort.InferenceSession.create(out.files[0].data);
      const L = config.numLayers;
      const H = config.numHiddens;
      const zeros = () => new ort.Tensor('float32', new Float32Array(H), [1, 1, H]);
      const feeds = (tokens: number[], state?: Record<string, ort.Tensor>) => {
        const f: Record<string, ort.Tensor> = { tokens: new ort.Tensor('int64', BigInt64Array.from(tokens.map(BigInt)), [tokens.length, 1]) };
        for (let l = 0; l < L; l++) {
          f[`h0_l${l}`] = state?.[`hT_l${l}`] ?? zeros();
          f[`c0_l${l}`] = state?.[`cT_l${l}`] ?? zeros();
        }
        return f;
      };
      const whole = await session.run(feeds(TOKENS));
      assert.deepEqual(whole.logits.dims, [TOKENS.length, 1, config.vocabSize]);
      const want = Float64Array.from(logitsReference(referenceModel(config, ckpt.weights), TOKENS).flatMap((r) => [...r]));
      const e = maxRelDiff(whole.logits.data as Float32Array, want);
      assert.ok(e < 1e-4, `logits differ: ${e}`);
      t.diagnostic(`onnx ${label(config)}: max relative logit difference to the float64 reference ${e.toExponential(2)}`);
      // the first 4 tokens, then the rest from the returned state: the same logits
      const first = await session.run(feeds(TOKENS.slice(0, 4)));
      const rest = await session.run(feeds(TOKENS.slice(4), first));
      const stepped = Float32Array.from([...(first.logits.data as Float32Array), ...(rest.logits.data as Float32Array)]);
      assert.ok(maxRelDiff(stepped, want) < 1e-4, 'stepping with the state');
      const meta = Object.fromEntries(
        // metadata props are in the model; read them back through the protobuf the export wrote
        (await import('onnx-proto')).default.onnx.ModelProto.decode(out.files[0].data).metadataProps.map((p) => [p.key, p.value]),
      );
      assert.equal(meta.kind, config.kind);
      assert.deepEqual(JSON.parse(meta.vocab as string), ckpt.vocab);
      await session.release();
    });
  }
});

const torch = spawnSync('/usr/bin/python3', ['-c', 'import torch'], { encoding: 'utf8' });
const noTorch = torch.status === 0 ? false : "Debian's python3-torch is not installed (apt-get install python3-torch)";

// d2l's models and our safetensors reader, from bench/d2l_torch.py
const BENCH_DIR = fileURLToPath(new URL('../../bench', import.meta.url));
const PY = `
import json, sys
import torch
from torch import nn
from torch.nn import functional as F
sys.path.insert(0, sys.argv[7])
from d2l_torch import RNNModel, lstm, read_safetensors

path, kind, V, H, L = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
tokens = json.loads(sys.argv[6])
sd, meta = read_safetensors(path)

X = torch.tensor([tokens])
with torch.no_grad():
    if kind == 'concise':
        net = RNNModel(nn.LSTM(V, H, num_layers=L), V)
        net.load_state_dict(sd, strict=True)
        y, _ = net(X, (torch.zeros(L, 1, H), torch.zeros(L, 1, H)))
    else:
        names = ['W_xi', 'W_hi', 'b_i', 'W_xf', 'W_hf', 'b_f', 'W_xo', 'W_ho', 'b_o', 'W_xc', 'W_hc', 'b_c', 'W_hq', 'b_q']
        assert sorted(sd) == sorted(names), sorted(sd)
        y, _ = lstm(F.one_hot(X.T, V).type(torch.float32), (torch.zeros(1, H), torch.zeros(1, H)), [sd[k] for k in names])
print(json.dumps({'meta': meta, 'logits': y.reshape(-1).tolist()}))
`;

describe("export: safetensors, loaded into the seed's PyTorch models", { skip: noTorch }, () => {
  for (const config of CONFIGS) {
    it(`${label(config)}: load_state_dict(strict=True) takes it; logits equal the reference; metadata`, async (t) => {
      const ckpt = checkpoint(config);
      const out = await exportModel(ckpt, 'safetensors');
      const file = path.join(dir, `${config.kind}-${config.numLayers}.safetensors`);
      writeFileSync(file, out.files[0].data);
      const r = spawnSync(
        '/usr/bin/python3',
        ['-c', PY, file, config.kind, String(config.vocabSize), String(config.numHiddens), String(config.numLayers), JSON.stringify(TOKENS), BENCH_DIR],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      const { meta, logits } = JSON.parse(r.stdout) as { meta: Record<string, string>; logits: number[] };
      assert.equal(meta.kind, config.kind);
      assert.equal(meta.num_layers, String(config.numLayers));
      assert.deepEqual(JSON.parse(meta.vocab), ckpt.vocab);
      const want = logitsReference(referenceModel(config, ckpt.weights), TOKENS);
      const e = maxRelDiff(logits, Float64Array.from(want.flatMap((x) => [...x])));
      assert.ok(e < 1e-5, `logits differ: ${e}`);
      t.diagnostic(`pytorch ${label(config)}: max relative logit difference to the float64 reference ${e.toExponential(2)}`);
    });
  }
});

describe('export: safetensors layout and the checkpoint format', () => {
  it('the header is 8-byte aligned and names every tensor with its byte range', () => {
    const buf = toSafetensors({ a: { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }, b: { shape: [1], data: Float32Array.of(7) } }, { x: 'y' });
    const n = Number(buf.readBigUInt64LE(0));
    assert.equal(n % 8, 0);
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
    assert.deepEqual(header.a, { dtype: 'F32', shape: [2, 3], data_offsets: [0, 24] });
    assert.deepEqual(header.b, { dtype: 'F32', shape: [1], data_offsets: [24, 28] });
    assert.deepEqual(header.__metadata__, { x: 'y' });
    assert.equal(buf.readFloatLE(8 + n + 24), 7);
    assert.equal(buf.length, 8 + n + 28);
  });

  it('checkpoint: our own file, which reads back as the same model (without the best-epoch weights a running job keeps)', async () => {
    const ckpt = { ...checkpoint(CONFIGS[2]), bestWeights: checkpoint(CONFIGS[2]).weights };
    const out = await exportModel(ckpt, 'checkpoint');
    const back = deserializeCheckpoint(out.files[0].data);
    assert.equal(back.epoch, 7);
    for (const [name, t] of Object.entries(ckpt.weights)) assert.deepEqual(back.weights[name].data, t.data, name);
    assert.equal(back.bestWeights, undefined);
  });
});

describe('import: a model to start from (train --init, Trainer.create init)', () => {
  for (const config of CONFIGS) {
    it(`${label(config)}: safetensors and checkpoint exports read back as exactly the same weights`, async () => {
      const ckpt = checkpoint(config);
      for (const format of ['safetensors', 'checkpoint'] as const) {
        const out = await exportModel(ckpt, format);
        const init = readInitModel(out.files[0].data, config);
        assert.deepEqual(init.vocab, ckpt.vocab, format);
        for (const [name, t] of Object.entries(ckpt.weights)) {
          assert.deepEqual(init.weights[name].shape, t.shape, `${format} ${name}`);
          assert.deepEqual(init.weights[name].data, t.data, `${format} ${name}`);
        }
      }
    });
  }

  it('a file for another model or no model at all is refused, naming what differs', async () => {
    const ckpt = checkpoint(CONFIGS[1]);
    const st = (await exportModel(ckpt, 'safetensors')).files[0].data;
    assert.throws(
      () => readInitModel(st, CONFIGS[0]),
      (e: unknown) => e instanceof ModelFileError && /no tensor W_xi/.test((e as Error).message),
    );
    assert.throws(() => readInitModel(st, { ...CONFIGS[1], numHiddens: 7 }), /has shape \[9,24\] in the file, the job's model needs \[9,28\]/);
    const ck = (await exportModel(ckpt, 'checkpoint')).files[0].data;
    assert.throws(() => readInitModel(ck, { ...CONFIGS[1], numLayers: 2 }), /the checkpoint is a concise model \(1 layer\(s\)/);
    assert.throws(() => readInitModel(Buffer.from('hello, world'), CONFIGS[1]), ModelFileError);
  });

  it('training from an exported model continues where it was (its perplexity), and a vocabulary mismatch is a spec error', async () => {
    const engine = await selectEngine(undefined, () => {});
    const spec = parseJobSpec({
      model: { kind: 'concise', numHiddens: 24 },
      data: { maxTokens: 3000, batchSize: 4, numSteps: 8 },
      train: { epochs: 12, seed: 5, lr: 1 },
      report: { prefixes: [] },
    });
    const first = await Trainer.create(spec, engine);
    let trained = NaN;
    for await (const e of first.run()) trained = e.perplexity;
    const st = (await exportModel(first.checkpoint(), 'safetensors')).files[0].data;
    first.dispose();
    const again = parseJobSpec({ ...spec, train: { epochs: 1, seed: 6, lr: 1 } });
    const fresh = await Trainer.create(again, engine);
    const fromModel = await Trainer.create(again, engine, undefined, (config) => readInitModel(st, config));
    const a = (await fresh.trainEpoch()).perplexity;
    const b = (await fromModel.trainEpoch()).perplexity;
    fresh.dispose();
    fromModel.dispose();
    assert.ok(b < a * 0.8, `from the model ${b} vs fresh ${a}`);
    assert.ok(Math.abs(b - trained) / trained < 0.25, `from the model ${b} vs where it was ${trained}`);
    // another corpus (another vocabulary): refused, naming init
    const other = parseJobSpec({ ...again, data: { ...again.data, corpus: { text: 'the quick brown fox jumps over the lazy dog '.repeat(80) } } });
    await assert.rejects(
      Trainer.create(other, engine, undefined, (config) => readInitModel(st, { ...config })),
      (e: unknown) => e instanceof SpecError || e instanceof ModelFileError,
    );
  });
});
