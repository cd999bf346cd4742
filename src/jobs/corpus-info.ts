// What a job's corpus gives under its tokenizer, measured at submission: the job is refused then
// (a clear 400) when its corpus is empty after tokenization, too short for one minibatch, or has a
// vocabulary over the model's limit — never a failed job later. Fills in what depends on the
// corpus: the whole length of an uploaded corpus as maxTokens (no silent cut) and, for a corpus
// that is not the book, sample prefixes taken from the corpus's own first words.
import { readFileSync } from 'node:fs';
import { cleanLine, TIME_MACHINE_PATH } from '../text/corpus.js';
import { minCorpusTokens } from '../text/data.js';
import { corpusFigures, emptyMessage, type CorpusFigures, type TokenizerName } from '../text/tokenizers.js';
import { LIMITS, parseJobSpec, SpecError, type JobSpec } from '../train/spec.js';
import type { CorpusStore } from './corpora.js';
import type { Caller } from './owners.js';
import { NotFoundError } from './errors.js';
import { textCorpusFigures } from './limits.js';
import type { DataInfo } from './types.js';

const bookFigures = new Map<string, CorpusFigures>();

function figuresOfBook(tokenizer: TokenizerName, minFreq: number): CorpusFigures {
  const key = `${tokenizer}/${minFreq}`;
  let f = bookFigures.get(key);
  if (!f) {
    f = corpusFigures(readFileSync(TIME_MACHINE_PATH, 'utf8'), tokenizer, minFreq);
    bookFigures.set(key, f);
  }
  return f;
}

/**
 * Prefixes for the samples of a corpus that is not the book: its first two words, and its first
 * word (as the book's recipe samples "time traveller" and "traveller"). For d2l-chars the words
 * of the cleaned text, so every character of the prefix is in the vocabulary.
 */
export function defaultPrefixes(start: string, tokenizer: TokenizerName): string[] {
  const text =
    tokenizer === 'd2l-chars'
      ? start
          .split(/\r\n|\r|\n/)
          .map(cleanLine)
          .join(' ')
      : start;
  const words = text.split(/\s+/u).filter(Boolean);
  const out: string[] = [];
  const two = words.slice(0, 2).join(' ');
  if (two && [...two].length <= LIMITS.prefixChars) out.push(two);
  if (words[0] && words[0] !== two && [...words[0]].length <= LIMITS.prefixChars) out.push(words[0]);
  return out;
}

function scanned(text: string): { totalTokens: number; vocabSize: number } {
  const f = textCorpusFigures(text, Number.MAX_SAFE_INTEGER);
  return { totalTokens: f.tokens, vocabSize: f.vocabSize };
}

/**
 * The parts of a spec the service fills in for the corpus, and the figures that judge it. An uploaded
 * corpus `owner` does not own (keys on) is refused exactly as a missing one.
 */
export async function resolveCorpus(input: unknown, parsed: JobSpec, corpora: CorpusStore, owner?: Caller): Promise<{ spec: JobSpec; info: DataInfo }> {
  const { corpus, tokenizer, minFreq } = parsed.data;
  let figures: { totalTokens: number; vocabSize: number; top?: [string, number][] };
  let start: string | undefined;
  if (corpus === 'timemachine') {
    figures = figuresOfBook(tokenizer, minFreq);
  } else if ('text' in corpus) {
    start = corpus.text.slice(0, 1000);
    // d2l-chars: one allocation-free scan (a pasted text may be 2 MB); the others tokenise it
    figures = tokenizer === 'd2l-chars' && minFreq === 0 ? scanned(corpus.text) : corpusFigures(corpus.text, tokenizer, minFreq);
  } else {
    const c = await corpora.get(corpus.id, owner);
    if (!c) throw new SpecError([{ field: 'data.corpus.id', message: `corpus ${corpus.id} not found (upload it with POST /v1/corpora)` }]);
    start = c.preview;
    try {
      figures = await corpora.figures(corpus.id, tokenizer, minFreq);
    } catch (e) {
      if (e instanceof NotFoundError) throw new SpecError([{ field: 'data.corpus.id', message: `corpus ${corpus.id} not found (it was deleted)` }]);
      throw e;
    }
  }
  if (figures.totalTokens === 0) throw new SpecError([{ field: 'data.corpus', message: emptyMessage(tokenizer) }]);

  // fill in what the client left to the corpus, then validate the whole spec again
  const raw = structuredClone(input) as { data?: Record<string, unknown>; report?: Record<string, unknown> };
  let changed = false;
  if (typeof corpus === 'object' && 'id' in corpus && raw.data?.maxTokens === undefined) {
    if (figures.totalTokens > LIMITS.maxTokens) {
      throw new SpecError([
        {
          field: 'data.maxTokens',
          message: `data.maxTokens: the corpus has ${figures.totalTokens} tokens (tokenizer ${tokenizer}), more than a job may train on (${LIMITS.maxTokens}); set data.maxTokens to train on its first part`,
        },
      ]);
    }
    raw.data = { ...raw.data, maxTokens: figures.totalTokens };
    changed = true;
  }
  if (start !== undefined && raw.report?.prefixes === undefined) {
    raw.report = { ...raw.report, prefixes: defaultPrefixes(start, tokenizer) };
    changed = true;
  }
  const spec = changed ? parseJobSpec(raw) : parsed;

  if (figures.vocabSize > LIMITS.vocabSize) {
    throw new SpecError([
      {
        field: tokenizer === 'words' ? 'data.minFreq' : 'data.tokenizer',
        message: `the vocabulary has ${figures.vocabSize} tokens (tokenizer ${tokenizer}); at most ${LIMITS.vocabSize}, the model's limit${tokenizer === 'words' ? ': raise data.minFreq so rare words become <unk>' : ''}`,
      },
    ]);
  }
  const maxTokens = spec.data.maxTokens ?? figures.totalTokens;
  const tokens = Math.min(maxTokens, figures.totalTokens);
  const validTokens = Math.floor(tokens * spec.data.validFraction);
  const trainTokens = tokens - validTokens;
  const { batchSize, numSteps } = spec.data;
  if (validTokens > 0 && validTokens < numSteps + 1) {
    throw new SpecError([
      {
        field: 'data.validFraction',
        message: `data.validFraction: the held-out part has ${validTokens} tokens; numSteps ${numSteps} needs at least ${numSteps + 1}`,
      },
    ]);
  }
  const need = minCorpusTokens(batchSize, numSteps);
  if (trainTokens < need) {
    const field =
      tokens === maxTokens && tokens < figures.totalTokens
        ? 'data.maxTokens'
        : typeof corpus === 'object' && 'id' in corpus
          ? 'data.corpus'
          : corpus === 'timemachine'
            ? 'data.maxTokens'
            : 'data.corpus.text';
    throw new SpecError([
      {
        field,
        message: `corpus has ${trainTokens} tokens${validTokens ? ' for training (after the held-out part)' : ''}; batchSize ${batchSize} × numSteps ${numSteps} needs at least ${need} for one minibatch`,
      },
    ]);
  }
  const info: DataInfo = {
    tokenizer,
    totalTokens: figures.totalTokens,
    maxTokens,
    trainTokens,
    validTokens,
    truncated: tokens < figures.totalTokens,
    vocabSize: figures.vocabSize,
    ...(figures.top ? { topTokens: figures.top.slice(0, 10) } : {}),
  };
  return { spec, info };
}
