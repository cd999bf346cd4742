// lstm-trainer: train (one local run, no Redis), generate (from a checkpoint file), and the
// service commands (serve, api, worker, submit, watch) registered by the service layer.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { int, num } from './options.js';
import { exportJobModel, registerClientCommands } from './client-commands.js';
import { registerCorpusCommands } from './corpus-commands.js';
import { registerModelCommands } from './model-commands.js';
import { registerServiceCommands } from './service-commands.js';
import { generateFromJob, registerTeamCommands } from './team-commands.js';
import { addSpecFlags } from './spec-flags.js';
import { exportCommand, generateCommand, trainCommand } from './train-commands.js';
import { UserError } from './errors.js';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

const program = new Command()
  .name('lstm-trainer')
  .description("Character-level LSTM language models, d2l's LSTM chapter as a service")
  .version(version, '-V, --version', 'print the version')
  .showHelpAfterError();

addSpecFlags(program.command('train').description('train one model locally (no Redis), printing perplexity per epoch and the samples'), {
  kindDefault: 'scratch',
  corpusHelp: 'train on this text file instead of the Time Machine',
  predictEveryHelp: 'print samples every N epochs',
})
  .option('--engine <name>', 'native | tfjs (default: ENGINE, else native where it loads)')
  .option('--prefix <text>', "a prefix to sample from (repeatable; default: the book's, or your corpus's first words)", (v: string, prev: string[] = []) => [
    ...prev,
    v,
  ])
  .option('--init <file>', "start from this model (a checkpoint, or a safetensors state dict in the seed's names) instead of fresh weights")
  .option('--save <file>', 'write the final checkpoint here')
  .option('--json', 'one JSON line per epoch instead of the progress bar')
  .action(trainCommand);

program
  .command('generate')
  .description("generate text from a checkpoint file, or from a job's latest checkpoint on a running service (--job)")
  .option('--checkpoint <file>', 'checkpoint written by train --save')
  .option('--job <jobId>', 'a job of a running service instead (its latest checkpoint; --url, --api-key as for submit)')
  .option('--url <url>', 'service URL, with --job (default: LSTM_TRAINER_URL, else http://HOST:HTTP_PORT)')
  .option('--api-key <key>', 'API key, with --job (default: LSTM_TRAINER_API_KEY)')
  .option('--prefix <text>', 'prefix to warm up on', 'time traveller')
  .option('--chars <n>', 'characters to generate', int('--chars'), 50)
  .option('--temperature <t>', '0 = greedy (predict_ch8)', num('--temperature'))
  .option('--top-k <k>', 'sample among the k most likely', int('--top-k'))
  .option('--seed <n>', 'sampling seed', int('--seed'))
  .option('--engine <name>', 'native | tfjs')
  .action((o: Parameters<typeof generateCommand>[0] & { job?: string; url?: string; apiKey?: string }) => {
    if ((o.job === undefined) === (o.checkpoint === undefined)) throw new UserError('generate takes --checkpoint FILE or --job ID (one of them)');
    return o.job !== undefined ? generateFromJob(o.job, o) : generateCommand(o);
  });

program
  .command('export [jobId]')
  .description(
    "a model as safetensors (PyTorch state dict), ONNX, a TensorFlow.js LayersModel, or a checkpoint: a running service's job (by id), or a checkpoint file",
  )
  .option('--checkpoint <file>', 'a checkpoint written by train --save (instead of a job id)')
  .option('--format <format>', 'safetensors | onnx | tfjs | checkpoint', 'safetensors')
  .requiredOption('-o, --output <path>', 'the file to write (tfjs: a directory for model.json and weights.bin)')
  .option('--url <url>', 'service URL, with a job id (default: LSTM_TRAINER_URL, else http://HOST:HTTP_PORT)')
  .option('--api-key <key>', 'API key, with a job id (default: LSTM_TRAINER_API_KEY)')
  .action((jobId: string | undefined, o: { checkpoint?: string; format: string; output: string; url?: string; apiKey?: string }) => {
    if ((jobId === undefined) === (o.checkpoint === undefined)) throw new UserError('export takes a job id or --checkpoint FILE (one of them)');
    return jobId !== undefined ? exportJobModel(jobId, o) : exportCommand({ ...o, checkpoint: o.checkpoint! });
  });

registerServiceCommands(program);
registerClientCommands(program);
registerCorpusCommands(program);
registerModelCommands(program);
registerTeamCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof UserError) {
    console.error(`lstm-trainer: ${e.message}`);
    process.exit(2);
  }
  throw e;
}
