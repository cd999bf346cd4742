// npx tsx bench/valid-pass.ts [--engine native --kinds scratch,concise --batches 8 --rounds 7]
// What the held-out perplexity's pass costs before and after the forward-only loss: the same
// minibatches (sequential, state carried, as Trainer.validPerplexity runs them) through
// lossAndGrads (the pass before: forward + backward, the gradient discarded) and through loss (the
// forward alone), interleaved round by round so that both see the same machine load. The d2l sizes:
// V=28, H=256, B=32, T=35. Prints ms per minibatch of each and their ratio (median over rounds).
// A benchmark, not a test.
import os from 'node:os';
import { parseArgs } from 'node:util';
import type { LstmModel, ModelConfig, ModelKind } from '../src/model/engine.js';
import { selectEngine } from '../src/model/engines.js';
import { initParams } from '../src/model/params.js';
import { loadCorpus } from '../src/text/corpus.js';
import { seqDataIterSequential, type Batch } from '../src/text/data.js';
import { Rng } from '../src/text/rng.js';

const { values: args } = parseArgs({
  options: {
    engine: { type: 'string', default: 'native' },
    kinds: { type: 'string', default: 'scratch,concise' },
    batches: { type: 'string', default: '8' },
    rounds: { type: 'string', default: '7' },
  },
});

const B = 32;
const T = 35;
const H = 256;
const rounds = Number(args.rounds);

const { tokens } = loadCorpus('timemachine', 0);
const data: Batch[] = [...seqDataIterSequential(tokens, B, T, new Rng(0))].slice(0, Number(args.batches));

/** ms per minibatch of one held-out pass through `call`. */
async function pass(call: (batch: Batch, opts: { resetState: boolean }) => Promise<{ loss: number }>): Promise<number> {
  const start = performance.now();
  for (const [i, batch] of data.entries()) await call(batch, { resetState: i === 0 });
  return (performance.now() - start) / data.length;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const engine = await selectEngine(args.engine, () => {});
console.log(
  `engine ${engine.name} (${engine.backend}); V=28 H=${H} B=${B} T=${T}; ${data.length} minibatches per pass, ${rounds} rounds, interleaved; ${os.cpus().length} CPUs, load average ${os
    .loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}`,
);
for (const kind of args.kinds.split(',') as ModelKind[]) {
  const config: ModelConfig = { kind, vocabSize: 28, numHiddens: H, numLayers: 1 };
  const model: LstmModel = await engine.createModel(config, initParams(config, new Rng(1)));
  const before = (b: Batch, o: { resetState: boolean }) => model.lossAndGrads(b, o);
  const after = (b: Batch, o: { resetState: boolean }) => model.loss(b, o);
  await pass(before); // warm-up: workspaces, thread pool, caches
  await pass(after);
  const withGrads: number[] = [];
  const forwardOnly: number[] = [];
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    // alternate which goes first, so neither always follows the other
    let a: number;
    let b: number;
    if (r % 2 === 0) {
      a = await pass(before);
      b = await pass(after);
    } else {
      b = await pass(after);
      a = await pass(before);
    }
    withGrads.push(a);
    forwardOnly.push(b);
    ratios.push(b / a);
  }
  console.log(
    `${kind}: lossAndGrads ${median(withGrads).toFixed(2)} ms/minibatch, loss ${median(forwardOnly).toFixed(2)} ms/minibatch; loss / lossAndGrads = ${median(ratios).toFixed(3)} (median of ${rounds} rounds; range ${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)})`,
  );
  model.dispose();
}
