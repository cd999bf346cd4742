// `lstm-trainer train` and `lstm-trainer generate`: the local, Redis-free path through the core.
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { EngineUnavailableError, selectEngine } from '../model/engines.js';
import { CheckpointError, deserializeCheckpoint, modelFromCheckpoint, serializeCheckpoint, type Checkpoint } from '../train/checkpoint.js';
import { EXPORT_FORMATS, exportModel, type ExportFormat } from '../train/export.js';
import { ModelFileError, readInitModel } from '../train/import.js';
import { generateChars, cleanPrefix, PrefixError } from '../train/predict.js';
import { parseJobSpec, SpecError } from '../train/spec.js';
import { Trainer, type EpochEvent } from '../train/trainer.js';
import { UserError } from './errors.js';
import { checkSavePath, makeDirectory, writeAtomically } from './files.js';
import { EpochProgress } from './progress.js';
import { applySpecFlags, flagError, setIn, type SpecFlags } from './spec-flags.js';
import { defaultPrefixes } from '../jobs/corpus-info.js';
import type { TokenizerName } from '../text/tokenizers.js';

interface TrainOptions extends SpecFlags {
  kind: string;
  engine?: string;
  init?: string;
  save?: string;
  json?: boolean;
  prefix?: string[];
}

/** Flags → the same job spec the service takes, validated by the same schema. */
function specFromFlags(o: TrainOptions) {
  const spec = applySpecFlags({}, o); // flags left out → defaults
  const text = (spec.data as { corpus?: { text?: string } } | undefined)?.corpus?.text;
  // samples from the corpus's own first words unless --prefix says otherwise (the book keeps its own)
  const prefixes = o.prefix ?? (text !== undefined ? defaultPrefixes(text.slice(0, 1000), (o.tokenizer ?? 'd2l-chars') as TokenizerName) : undefined);
  if (prefixes) setIn(spec, ['report', 'prefixes'], prefixes);
  return parseJobSpec(spec);
}

async function engineOrExit(name?: string) {
  try {
    return await selectEngine(name);
  } catch (e) {
    if (e instanceof EngineUnavailableError) throw new UserError(e.message);
    throw e;
  }
}

export async function trainCommand(o: TrainOptions): Promise<void> {
  let trainer: Trainer;
  if (o.save) checkSavePath(o.save);
  let initBytes: Buffer | undefined;
  if (o.init) {
    try {
      initBytes = readFileSync(o.init);
    } catch (e) {
      throw new UserError(`--init ${o.init}: cannot read it: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  try {
    const spec = specFromFlags(o);
    const engine = await engineOrExit(o.engine);
    trainer = await Trainer.create(spec, engine, undefined, initBytes ? (config) => readInitModel(initBytes!, config) : undefined);
  } catch (e) {
    if (e instanceof SpecError) {
      if (e.issues.length === 1 && e.issues[0].field === 'init') throw new UserError(`--init ${o.init}: ${e.issues[0].message}`);
      throw flagError(e, o);
    }
    if (e instanceof ModelFileError) throw new UserError(`--init ${o.init}: ${e.message}`);
    throw e;
  }
  const { spec, model } = trainer;
  const controller = new AbortController();
  process.once('SIGINT', () => controller.abort('interrupted'));
  const header = `${spec.model.kind} LSTM, ${spec.model.numHiddens} hidden, engine ${model.engine}/${model.backend}, vocab ${trainer.vocab.size}`;
  const bar = EpochProgress.onTerminal(!o.json);
  if (o.json) console.log(JSON.stringify({ type: 'start', kind: spec.model.kind, engine: model.engine, backend: model.backend, spec }));
  else console.error(header);
  let last: EpochEvent | undefined;
  let speedSum = 0;
  try {
    for await (const ev of trainer.run(controller.signal)) {
      last = ev;
      speedSum += ev.tokensPerSec;
      if (o.json) {
        console.log(JSON.stringify({ type: 'epoch', ...ev }));
      } else if (bar) {
        bar.update(ev);
      } else {
        console.log(`epoch ${ev.epoch}/${ev.epochs} perplexity ${ev.perplexity.toFixed(3)} ${Math.round(ev.tokensPerSec)} tokens/s`);
        for (const s of ev.samples ?? []) console.log(`  [epoch ${ev.epoch}] ${s.text}`);
      }
    }
  } finally {
    bar?.stop();
  }
  if (last && !o.json) {
    // as d2l's closing line; the speed is the mean over this run's epochs
    const speed = Math.round(speedSum / last.epoch);
    console.log(`perplexity ${last.perplexity.toFixed(2)}, ${speed} tokens/s on ${model.engine}/${model.backend}`);
  }
  if (o.save) writeAtomically(o.save, serializeCheckpoint(trainer.checkpoint()));
  trainer.dispose();
}

interface GenerateOptions {
  checkpoint: string;
  prefix: string;
  chars: number;
  temperature?: number;
  topK?: number;
  seed?: number;
  engine?: string;
}

export async function generateCommand(o: GenerateOptions): Promise<void> {
  let buf: Buffer;
  try {
    buf = readFileSync(o.checkpoint);
  } catch (e) {
    throw new UserError(`cannot read checkpoint ${o.checkpoint}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  if (o.chars < 1 || o.chars > 100000) throw new UserError('--chars must be between 1 and 100000');
  if (o.temperature !== undefined && o.temperature < 0) throw new UserError('--temperature must be ≥ 0');
  if (o.topK !== undefined && o.topK < 1) throw new UserError('--top-k must be ≥ 1');
  try {
    const ckpt = deserializeCheckpoint(buf);
    const tokenizer = ckpt.spec.data.tokenizer ?? 'd2l-chars'; // read the prefix as the model's corpus was read
    const prefix = cleanPrefix(o.prefix, tokenizer);
    const { model, vocab } = await modelFromCheckpoint(ckpt, await engineOrExit(o.engine));
    process.stdout.write(prefix);
    for await (const ch of generateChars(prefix, o.chars, model, vocab, { temperature: o.temperature, topK: o.topK, seed: o.seed, tokenizer })) {
      process.stdout.write(ch);
    }
    process.stdout.write('\n');
    model.dispose();
  } catch (e) {
    if (e instanceof CheckpointError) throw new UserError(`${o.checkpoint}: ${e.message}`);
    if (e instanceof PrefixError) throw new UserError(`--prefix: ${e.message}`);
    throw e;
  }
}

interface ExportOptions {
  checkpoint: string;
  format: string;
  output: string;
}

/**
 * `lstm-trainer export --checkpoint FILE --format F -o OUT`: a checkpoint file in another format.
 * safetensors and checkpoint write the file OUT; tfjs writes model.json and weights.bin into the
 * directory OUT (made if missing).
 */
export async function exportCommand(o: ExportOptions): Promise<void> {
  if (!(EXPORT_FORMATS as readonly string[]).includes(o.format)) throw new UserError(`--format must be one of ${EXPORT_FORMATS.join(', ')}, got '${o.format}'`);
  let buf: Buffer;
  try {
    buf = readFileSync(o.checkpoint);
  } catch (e) {
    throw new UserError(`cannot read checkpoint ${o.checkpoint}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  let ckpt: Checkpoint;
  try {
    ckpt = deserializeCheckpoint(buf);
  } catch (e) {
    if (e instanceof CheckpointError) throw new UserError(`${o.checkpoint}: ${e.message}`);
    throw e;
  }
  const out = await exportModel(ckpt, o.format as ExportFormat);
  if (out.format === 'tfjs') {
    makeDirectory(o.output, '-o');
    for (const f of out.files) writeAtomically(resolve(o.output, f.name), f.data);
  } else {
    checkSavePath(o.output, '-o');
    writeAtomically(o.output, out.files[0].data);
  }
  console.error(
    `lstm-trainer: exported epoch ${out.epoch} (${ckpt.config.kind}, ${ckpt.config.numLayers} layer(s), ${ckpt.config.numHiddens} hidden, vocabulary ${ckpt.config.vocabSize}) as ${out.format} to ${o.output}`,
  );
}
