// d2l's two minibatch samplers over a token sequence (seq_data_iter_random / seq_data_iter_sequential).
import type { Rng } from './rng.js';

/** One minibatch: X and Y are (batchSize, numSteps) row-major, Y is X shifted by one token. */
export interface Batch {
  X: Int32Array;
  Y: Int32Array;
  batchSize: number;
  numSteps: number;
}

export type Sampling = 'sequential' | 'random';

/** Random sampling: subsequences at shuffled offsets; adjacent minibatches are not adjacent in the text. */
export function* seqDataIterRandom(corpus: Int32Array, batchSize: number, numSteps: number, rng: Rng): Generator<Batch> {
  const start = rng.randint(0, numSteps - 1);
  const data = corpus.subarray(start);
  const numSubseqs = Math.floor((data.length - 1) / numSteps);
  const initialIndices = rng.shuffle(Array.from({ length: numSubseqs }, (_, i) => i * numSteps));
  const numBatches = Math.floor(numSubseqs / batchSize);
  for (let i = 0; i < batchSize * numBatches; i += batchSize) {
    const X = new Int32Array(batchSize * numSteps);
    const Y = new Int32Array(batchSize * numSteps);
    for (let b = 0; b < batchSize; b++) {
      const j = initialIndices[i + b];
      X.set(data.subarray(j, j + numSteps), b * numSteps);
      Y.set(data.subarray(j + 1, j + 1 + numSteps), b * numSteps);
    }
    yield { X, Y, batchSize, numSteps };
  }
}

/** Sequential partitioning: row b of minibatch i+1 continues row b of minibatch i. */
export function* seqDataIterSequential(corpus: Int32Array, batchSize: number, numSteps: number, rng: Rng): Generator<Batch> {
  const offset = rng.randint(0, numSteps);
  const numTokens = Math.floor((corpus.length - offset - 1) / batchSize) * batchSize;
  const rowLen = numTokens / batchSize;
  const Xs = corpus.subarray(offset, offset + numTokens);
  const Ys = corpus.subarray(offset + 1, offset + 1 + numTokens);
  const numBatches = Math.floor(rowLen / numSteps);
  for (let i = 0; i < numSteps * numBatches; i += numSteps) {
    const X = new Int32Array(batchSize * numSteps);
    const Y = new Int32Array(batchSize * numSteps);
    for (let b = 0; b < batchSize; b++) {
      X.set(Xs.subarray(b * rowLen + i, b * rowLen + i + numSteps), b * numSteps);
      Y.set(Ys.subarray(b * rowLen + i, b * rowLen + i + numSteps), b * numSteps);
    }
    yield { X, Y, batchSize, numSteps };
  }
}

export function seqDataIter(sampling: Sampling, corpus: Int32Array, batchSize: number, numSteps: number, rng: Rng): Generator<Batch> {
  return sampling === 'random' ? seqDataIterRandom(corpus, batchSize, numSteps, rng) : seqDataIterSequential(corpus, batchSize, numSteps, rng);
}

/** The fewest tokens that give one minibatch under either sampler (worst-case offset). */
export function minCorpusTokens(batchSize: number, numSteps: number): number {
  return batchSize * numSteps + numSteps + 1;
}
