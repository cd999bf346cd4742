// The epoch progress of a training run on a terminal — one bar for `train` and for `watch` /
// `submit --watch`: epoch, perplexity, tokens/s and the ETA; the samples printed above it as they
// come. Without a terminal (or with --json) there is no bar and the caller prints lines.
import cliProgress from 'cli-progress';

export interface EpochLike {
  epoch: number;
  epochs: number;
  perplexity: number | null;
  tokensPerSec: number;
  samples?: { text: string }[];
}

export class EpochProgress {
  private readonly bar: cliProgress.SingleBar;
  private started = false;

  private constructor() {
    this.bar = new cliProgress.SingleBar(
      { format: 'epoch {value}/{total} |{bar}| perplexity {ppl} | {speed} tokens/s | ETA {eta_formatted}', stream: process.stderr, hideCursor: true },
      cliProgress.Presets.shades_classic,
    );
  }

  /** A bar on stderr when it is a terminal, else undefined. */
  static onTerminal(enabled = true): EpochProgress | undefined {
    return enabled && process.stderr.isTTY ? new EpochProgress() : undefined;
  }

  /** Shows epoch `ev` (starting the bar at the first one); samples go above the bar. */
  update(ev: EpochLike): void {
    const ppl = ev.perplexity === null || !Number.isFinite(ev.perplexity) ? 'n/a' : ev.perplexity.toFixed(2);
    const payload = { ppl, speed: Math.round(ev.tokensPerSec) };
    if (!this.started) {
      this.bar.start(ev.epochs, ev.epoch, payload);
      this.started = true;
    } else {
      this.bar.update(ev.epoch, payload);
    }
    if (ev.samples?.length) {
      this.bar.stop();
      for (const s of ev.samples) console.log(`  [epoch ${ev.epoch}] ${s.text}`);
      if (ev.epoch < ev.epochs) this.bar.start(ev.epochs, ev.epoch, payload);
      else this.started = false;
    }
  }

  stop(): void {
    if (this.started) this.bar.stop();
    this.started = false;
  }
}
