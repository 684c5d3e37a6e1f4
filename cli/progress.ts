/**
 * Progress for long steps: a cli-progress bar on a terminal, plain lines otherwise (CI logs, pipes,
 * `--no-progress`) — a line at most every `plainEveryMs`, and one when the step ends.
 */
import { SingleBar } from 'cli-progress';
import { bytes, clock } from './format';
import type { Io } from './io';

export interface ProgressOptions {
  label: string;
  total: number;
  unit: 'bytes' | 'items';
  /** false: plain lines even on a terminal. */
  bar: boolean;
  plainEveryMs?: number;
}

export class Progress {
  private readonly started = Date.now();
  private readonly bar?: SingleBar;
  private lastPlain = 0;
  private value = 0;
  private note = '';

  constructor(
    private readonly io: Io,
    private readonly opts: ProgressOptions,
  ) {
    if (opts.bar && io.isTTY && io.progressStream) {
      this.bar = new SingleBar({
        stream: io.progressStream,
        format: `${opts.label} {bar} {percentage}% | {done}/{all} | {rate} | ETA {etaText} {note}`,
        barsize: 28,
        hideCursor: true,
        clearOnComplete: false,
        etaBuffer: 50,
      });
      this.bar.start(Math.max(1, opts.total), 0, this.payload());
    } else {
      this.lastPlain = Date.now();
    }
  }

  private fmt(n: number): string {
    return this.opts.unit === 'bytes' ? bytes(n) : String(n);
  }

  private rate(): number {
    const s = (Date.now() - this.started) / 1000;
    return s > 0 ? this.value / s : 0;
  }

  private payload() {
    const rate = this.rate();
    const left = this.opts.total - this.value;
    return {
      done: this.fmt(this.value),
      all: this.fmt(this.opts.total),
      rate: this.opts.unit === 'bytes' ? `${bytes(rate)}/s` : `${rate.toFixed(1)}/s`,
      etaText: rate > 0 ? clock(left / rate) : '--:--',
      note: this.note,
    };
  }

  update(value: number, note?: string): void {
    this.value = Math.min(value, this.opts.total);
    if (note !== undefined) this.note = note;
    if (this.bar) {
      this.bar.update(this.value, this.payload());
      return;
    }
    const every = this.opts.plainEveryMs ?? 5000;
    if (Date.now() - this.lastPlain >= every && this.value < this.opts.total) {
      this.lastPlain = Date.now();
      const p = this.payload();
      const pct = Math.floor((100 * this.value) / Math.max(1, this.opts.total));
      this.io.err(
        `${this.opts.label} ${pct}% ${p.done}/${p.all} ${p.rate} ETA ${p.etaText} ${this.note}`.trimEnd(),
      );
    }
  }

  /** Ends the step; `summary` replaces the default "label done" line in plain mode. */
  done(summary?: string): void {
    this.value = this.opts.total;
    if (this.bar) {
      this.bar.update(this.value, this.payload());
      this.bar.stop();
    }
    if (summary) this.io.err(summary);
  }

  /** Stops drawing without claiming completion (on failure). */
  abort(): void {
    this.bar?.stop();
  }

  get elapsedMs(): number {
    return Date.now() - this.started;
  }
}

/**
 * A status line that is redrawn in place on a terminal (waiting for a build) and printed only when
 * it changes otherwise.
 */
export class StatusLine {
  private last = '';
  private drawn = false;

  constructor(
    private readonly io: Io,
    private readonly tty: boolean,
  ) {}

  set(text: string, changeKey = text): void {
    if (this.tty && this.io.progressStream) {
      this.io.progressStream.write(`\r\x1b[2K${text}`);
      this.drawn = true;
      return;
    }
    if (changeKey !== this.last) this.io.err(text);
    this.last = changeKey;
  }

  end(): void {
    if (this.drawn && this.io.progressStream) this.io.progressStream.write('\r\x1b[2K');
    this.drawn = false;
  }
}
