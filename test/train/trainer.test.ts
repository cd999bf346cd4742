// The train_ch8 loop over each available engine: perplexity bookkeeping, resume, abort, generation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { EngineFactory, LstmModel, Weights } from '../../src/model/engine.js';
import { selectEngine } from '../../src/model/engines.js';
import { deserializeCheckpoint, modelFromCheckpoint, serializeCheckpoint } from '../../src/train/checkpoint.js';
import { predict } from '../../src/train/predict.js';
import { parseJobSpec } from '../../src/train/spec.js';
import { AbortedError, Trainer, type EpochEvent } from '../../src/train/trainer.js';
import type { Batch } from '../../src/text/data.js';

const tiny = (over: object = {}) =>
  parseJobSpec({
    model: { kind: 'scratch', numHiddens: 16 },
    data: { maxTokens: 1500, batchSize: 4, numSteps: 8 },
    train: { epochs: 4, lr: 1, seed: 11 },
    report: { predictEvery: 2, prefixes: ['time traveller'], numPreds: 10 },
    ...over,
  });

// every test runs on each engine; an engine that is unavailable here is a skipped test, with the reason
const ENGINES: { name: string; engine?: EngineFactory; skip: string | false }[] = [];
for (const name of ['tfjs', 'native']) {
  try {
    ENGINES.push({ name, engine: await selectEngine(name, () => {}), skip: false });
  } catch (e) {
    ENGINES.push({ name, skip: `${name} engine unavailable: ${(e as Error).message}` });
  }
}

function eachEngine(title: string, fn: (engine: EngineFactory) => Promise<void>): void {
  for (const { name, engine, skip } of ENGINES) test(`${name}: ${title}`, { skip }, () => fn(engine!));
}

async function collect(it: AsyncIterable<EpochEvent>): Promise<EpochEvent[]> {
  const out: EpochEvent[] = [];
  for await (const e of it) out.push(e);
  return out;
}

eachEngine('perplexity is exp(Σ loss·tokens / Σ tokens) of the epoch; samples every predictEvery epochs', async (engine) => {
  const trainer = await Trainer.create(tiny(), engine);
  const losses: number[] = [];
  const model = trainer.model as LstmModel;
  const step = model.trainStep.bind(model);
  model.trainStep = async (b, o) => {
    const r = await step(b, o);
    losses.push(r.loss);
    return r;
  };
  const events: EpochEvent[] = [];
  for await (const e of trainer.run()) {
    // minibatches have equal size, so the token-weighted mean is the plain mean of this epoch's losses
    const expected = Math.exp(losses.reduce((a, b) => a + b, 0) / losses.length);
    assert.ok(Math.abs(e.perplexity - expected) / expected < 1e-6, `${engine.name}: ${e.perplexity} vs ${expected}`);
    losses.length = 0;
    events.push(e);
  }
  assert.deepEqual(
    events.map((e) => e.epoch),
    [1, 2, 3, 4],
  );
  assert.deepEqual(
    events.map((e) => !!e.samples),
    [false, true, false, true],
  );
  assert.ok(events[3].perplexity < events[0].perplexity, `${engine.name}: training lowers perplexity`);
  assert.ok(events.every((e) => e.tokensPerSec > 0 && e.elapsedMs >= 0));
  assert.match(events[1].samples![0].text, /^time traveller.{10}$/);
  trainer.dispose();
});

eachEngine('a run resumed from a checkpoint continues exactly as an uninterrupted one', async (engine) => {
  const full = await Trainer.create(tiny(), engine);
  const straight = await collect(full.run());
  const first = await Trainer.create(tiny({ train: { epochs: 2, lr: 1, seed: 11 } }), engine);
  await collect(first.run());
  const ckpt = deserializeCheckpoint(serializeCheckpoint(first.checkpoint()));
  const resumed = await Trainer.create(tiny(), engine, ckpt);
  const rest = await collect(resumed.run());
  assert.deepEqual(
    rest.map((e) => e.epoch),
    [3, 4],
  );
  for (const [i, e] of rest.entries()) {
    assert.ok(
      Math.abs(e.perplexity - straight[i + 2].perplexity) < 1e-4 * straight[i + 2].perplexity,
      `${engine.name} epoch ${e.epoch}: ${e.perplexity} vs ${straight[i + 2].perplexity}`,
    );
  }
  for (const t of [full, first, resumed]) t.dispose();
});

eachEngine(
  'held-out perplexity: the forward-only loss over the held-out tail, no gradient, weights untouched; the same figure as through lossAndGrads',
  async (engine) => {
    const spec = tiny({ data: { maxTokens: 1500, batchSize: 4, numSteps: 8, validFraction: 0.2 } });
    const trainer = await Trainer.create(spec, engine);
    await collect(trainer.run());
    const model = trainer.model;
    const seen: Array<{ batch: Batch; resetState: boolean }> = [];
    const loss = model.loss.bind(model);
    model.loss = (batch, opts) => {
      seen.push({ batch, resetState: opts.resetState });
      return loss(batch, opts);
    };
    const noGradient = () => Promise.reject(new Error('the held-out pass asked for a gradient'));
    model.lossAndGrads = noGradient;
    model.trainStep = noGradient;
    const before = model.getWeights();
    const v = await trainer.validPerplexity();
    const after = model.getWeights();
    for (const name of Object.keys(before)) assert.deepEqual(after[name].data, before[name].data, `${engine.name}: ${name} changed`);
    // 300 held-out tokens: 4 rows of 74, 9 minibatches of 8 steps, state carried after the first
    assert.equal(seen.length, 9);
    assert.deepEqual(
      seen.map((s) => s.resetState),
      [true, ...Array(8).fill(false)],
    );
    // the figure before this pass existed: the same minibatches through lossAndGrads on the same weights
    const { model: other } = await modelFromCheckpoint(trainer.checkpoint(), engine);
    let sum = 0;
    for (const { batch, resetState } of seen) sum += (await other.lossAndGrads(batch, { resetState })).loss;
    const want = Math.exp(sum / seen.length);
    assert.ok(Math.abs(v - want) <= 1e-6 * want, `${engine.name}: ${v} vs ${want} through lossAndGrads`);
    other.dispose();
    trainer.dispose();
  },
);

eachEngine("early stopping after a resume ends with the best epoch's weights: the checkpoint keeps them while they are not the last", async (engine) => {
  // minDelta larger than any improvement: epoch 1 is the best, and patience 2 stops the job after epoch 3
  const spec = tiny({
    data: { maxTokens: 1500, batchSize: 4, numSteps: 8, validFraction: 0.2 },
    train: { epochs: 10, lr: 1, seed: 11, earlyStopping: { patience: 2, minDelta: 1000 } },
  });
  const same = (a: Weights, b: Weights, what: string) => {
    for (const name of Object.keys(b)) assert.deepEqual(a[name].data, b[name].data, `${engine.name}: ${what}: ${name}`);
  };
  const first = await Trainer.create(spec, engine);
  const epochs = first.run();
  await epochs.next();
  const best = first.model.getWeights();
  const atBest = deserializeCheckpoint(serializeCheckpoint(first.checkpoint()));
  assert.equal(atBest.bestWeights, undefined, 'at the best epoch the weights are the best ones: no copy');
  await epochs.next();
  const pastBest = deserializeCheckpoint(serializeCheckpoint(first.checkpoint()));
  assert.deepEqual(pastBest.earlyStopping?.bestEpoch, 1);
  assert.ok(pastBest.bestWeights, "epoch 2's checkpoint has the best epoch's weights");
  same(pastBest.bestWeights!, best, "epoch 2's checkpoint keeps epoch 1's weights");
  await epochs.return(undefined);
  first.dispose();

  // resumed after the best epoch, and at it: either way the job stops after epoch 3 with epoch 1's weights
  for (const [what, ckpt] of [
    ['resumed after the best epoch', pastBest],
    ['resumed at the best epoch', atBest],
  ] as const) {
    const resumed = await Trainer.create(spec, engine, ckpt);
    const rest = await collect(resumed.run());
    assert.equal(rest.at(-1)!.epoch, 3, what);
    assert.match(rest.at(-1)!.stopReason!, /the model is epoch 1's$/, what);
    same(resumed.model.getWeights(), best, what);
    const final = resumed.checkpoint();
    assert.equal(final.bestWeights, undefined, `${what}: the final checkpoint's weights are the best ones`);
    same(final.weights, best, `${what}: final checkpoint`);
    resumed.dispose();
  }
});

eachEngine('an aborted run stops within one minibatch', async (engine) => {
  const trainer = await Trainer.create(tiny({ train: { epochs: 50, seed: 1 } }), engine);
  const controller = new AbortController();
  let steps = 0;
  const step = trainer.model.trainStep.bind(trainer.model);
  trainer.model.trainStep = async (b, o) => {
    steps += 1;
    if (steps === 3) controller.abort('cancel');
    return step(b, o);
  };
  await assert.rejects(collect(trainer.run(controller.signal)), (e: unknown) => e instanceof AbortedError && e.reason === 'cancel');
  assert.equal(steps, 3);
  trainer.dispose();
});

eachEngine('generation: greedy is predict_ch8, sampling is reproducible with a seed, a loaded checkpoint generates the same text', async (engine) => {
  const trainer = await Trainer.create(tiny(), engine);
  await collect(trainer.run());
  const { model, vocab } = trainer;
  const greedy = await predict('Time Traveller!', 30, model, vocab);
  assert.match(greedy, /^time traveller[a-z <unk>]*$/);
  assert.equal(await predict('time traveller', 30, model, vocab), greedy, 'prefix cleaned with the corpus rules');
  const s1 = await predict('the', 40, model, vocab, { temperature: 1, seed: 5 });
  assert.equal(await predict('the', 40, model, vocab, { temperature: 1, seed: 5 }), s1);
  const others = await Promise.all([6, 7, 8].map((seed) => predict('the', 40, model, vocab, { temperature: 1, seed })));
  assert.ok(
    others.some((o) => o !== s1),
    'other seeds give other samples',
  );
  const topOne = await predict('the', 20, model, vocab, { temperature: 2, topK: 1, seed: 3 });
  assert.equal(topOne, await predict('the', 20, model, vocab), 'top-1 sampling is greedy');
  const loaded = await modelFromCheckpoint(deserializeCheckpoint(serializeCheckpoint(trainer.checkpoint())), engine);
  assert.equal(await predict('Time Traveller!', 30, loaded.model, loaded.vocab), greedy);
  loaded.model.dispose();
  trainer.dispose();
});
