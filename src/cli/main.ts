// lstm-trainer: train (one local run, no Redis), generate (from a checkpoint file), and the
// service commands (serve, api, worker, submit, watch) registered by the service layer.
import { Command } from 'commander';
import { int, num } from './options.js';
import { registerServiceCommands } from './service-commands.js';
import { generateCommand, trainCommand } from './train-commands.js';
import { UserError } from './errors.js';

const program = new Command()
  .name('lstm-trainer')
  .description("Character-level LSTM language models, d2l's LSTM chapter as a service")
  .showHelpAfterError();

program
  .command('train')
  .description('train one model locally (no Redis), printing perplexity per epoch and the samples')
  .option('--kind <kind>', 'scratch | concise', 'scratch')
  .option('--epochs <n>', 'epochs', int('--epochs'))
  .option('--hidden <n>', 'hidden units', int('--hidden'))
  .option('--layers <n>', 'LSTM layers (concise)', int('--layers'))
  .option('--lr <x>', 'learning rate', num('--lr'))
  .option('--clip <x>', 'gradient clipping theta', num('--clip'))
  .option('--corpus <file>', 'train on this text file instead of the Time Machine')
  .option('--max-tokens <n>', 'cut the corpus to this many tokens', int('--max-tokens'))
  .option('--batch-size <n>', 'minibatch size', int('--batch-size'))
  .option('--num-steps <n>', 'time steps per minibatch', int('--num-steps'))
  .option('--sampling <s>', 'sequential | random')
  .option('--seed <n>', 'random seed', int('--seed'))
  .option('--predict-every <n>', 'print samples every N epochs', int('--predict-every'))
  .option('--engine <name>', 'native | tfjs (default: ENGINE, else native where it loads)')
  .option('--save <file>', 'write the final checkpoint here')
  .option('--json', 'one JSON line per epoch instead of the progress bar')
  .action(trainCommand);

program
  .command('generate')
  .description('generate text from a checkpoint file')
  .requiredOption('--checkpoint <file>', 'checkpoint written by train --save')
  .option('--prefix <text>', 'prefix to warm up on', 'time traveller')
  .option('--chars <n>', 'characters to generate', int('--chars'), 50)
  .option('--temperature <t>', '0 = greedy (predict_ch8)', num('--temperature'))
  .option('--top-k <k>', 'sample among the k most likely', int('--top-k'))
  .option('--seed <n>', 'sampling seed', int('--seed'))
  .option('--engine <name>', 'native | tfjs')
  .action(generateCommand);

registerServiceCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (e) {
  if (e instanceof UserError) {
    console.error(`lstm-trainer: ${e.message}`);
    process.exit(2);
  }
  throw e;
}
