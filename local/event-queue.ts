/**
 * At-least-once delivery of S3 release events to the build handler, across this process's own crash,
 * as Lambda's asynchronous-invocation queue does for the deployed builder.
 *
 * Layout under `dir` (VICINITY_HOME/events):
 *   pending/{id}.json  one file per received event record, written (tmp + fsync + rename) before the
 *                      build is handed the event; rewritten before each attempt (attempts, notBefore,
 *                      lastError); removed once the handler returned an outcome that needs no retry.
 *   failed/{id}.json   events whose every attempt failed (the local failed-builds queue), with the
 *                      last error; nothing retries them.
 * `id` sorts by arrival (`{receivedAt ms}-{counter}-{random}`), so a restart redelivers in order.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { S3Event, S3EventRecord } from 'aws-lambda';
import type { BuildOutcome } from '../functions/builder/build-release';
import { parseReleaseKey } from '../functions/core/release';

/** One received S3 event record, as persisted in pending/ and failed/. */
export interface QueuedEvent {
  id: string;
  key: string;
  etag?: string;
  sequencer?: string;
  record: S3EventRecord;
  receivedAt: string;
  /** Deliveries started so far (a crash mid-delivery counts as a failed attempt, as on Lambda). */
  attempts: number;
  /** Epoch ms before which the next attempt must not start (backoff). */
  notBefore?: number;
  lastError?: string;
  failedAt?: string;
}

export interface EventQueueOptions {
  /** VICINITY_HOME/events. */
  dir: string;
  /** Runs the build handler on a one-record S3 event; throwing means "retry". */
  deliver: (event: S3Event, attempt: number) => Promise<BuildOutcome[]>;
  /** Deliveries per event before it goes to failed/: 1 + Lambda's 2 async retries by default. */
  maxAttempts?: number;
  /** Wait before retry n (1-based: delays[0] before the 2nd attempt); the last entry repeats. */
  retryDelaysMs?: readonly number[];
  log?: (line: string) => void;
}

/** How a release's build settled: its outcomes, or (rejection) the error of its last attempt. */
export interface SettledOptions {
  /** Only the event of the object with this ETag (as PutObject returned it; quotes are ignored). */
  etag?: string;
  sequencer?: string;
  /** Only events received after this cursor (`cursor()` taken before the upload). */
  after?: number;
  timeoutMs?: number;
}

export class BuildSettleError extends Error {
  constructor(
    message: string,
    readonly key: string,
    readonly attempts: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'BuildSettleError';
  }
}

export class SettleTimeoutError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettleTimeoutError';
  }
}

interface Tracked {
  seq: number;
  event: QueuedEvent;
  state: 'pending' | 'running' | 'done' | 'failed';
  outcomes?: BuildOutcome[];
  error?: Error;
  /** The pending/ file is on disk once this resolves. */
  written?: Promise<void>;
}

interface Waiter {
  key: string;
  opts: SettledOptions;
  resolve(o: BuildOutcome[]): void;
  reject(err: Error): void;
}

const DEFAULT_RETRY_DELAYS_MS = [60_000, 120_000];
const stripQuotes = (s: string | undefined) => s?.replaceAll('"', '');

export class RetryableOutcomeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RetryableOutcomeError';
  }
}

/** A release.json ObjectCreated record, or undefined for any other record (not a build trigger). */
export function releaseRecord(record: unknown): (S3EventRecord & { key: string }) | undefined {
  const r = record as S3EventRecord | undefined;
  const key = r?.s3?.object?.key;
  if (!key || !r.eventName?.startsWith('ObjectCreated')) return undefined;
  const decoded = decodeURIComponent(key.replace(/\+/g, ' '));
  // The same test the build handler applies: events it would ignore are not queued.
  if (!parseReleaseKey(decoded)) return undefined;
  return Object.assign(r, { key: decoded });
}

export class EventQueue {
  private readonly pendingDir: string;
  private readonly failedDir: string;
  private readonly maxAttempts: number;
  private readonly delays: readonly number[];
  private readonly log: (line: string) => void;
  private readonly tracked: Tracked[] = [];
  private readonly waiters = new Set<Waiter>();
  private readonly idleWaiters = new Set<() => void>();
  private seq = 0;
  private counter = 0;
  private running: Promise<void> | undefined;
  private wake: NodeJS.Timeout | undefined;
  private writes = Promise.resolve();
  private stopped = false;

  private constructor(private readonly opts: EventQueueOptions) {
    this.pendingDir = join(opts.dir, 'pending');
    this.failedDir = join(opts.dir, 'failed');
    this.maxAttempts = opts.maxAttempts ?? 3;
    this.delays = opts.retryDelaysMs?.length ? opts.retryDelaysMs : DEFAULT_RETRY_DELAYS_MS;
    this.log = opts.log ?? (() => undefined);
  }

  /** Opens the queue and redelivers what a previous process left in pending/. */
  static async open(opts: EventQueueOptions): Promise<EventQueue> {
    const q = new EventQueue(opts);
    await mkdir(q.pendingDir, { recursive: true });
    await mkdir(q.failedDir, { recursive: true });
    const names = (await readdir(q.pendingDir)).filter((n) => n.endsWith('.json')).sort();
    for (const name of names) {
      try {
        const event = JSON.parse(await readFile(join(q.pendingDir, name), 'utf8')) as QueuedEvent;
        // Redeliver now: whatever backoff was due, the process that set it is gone.
        delete event.notBefore;
        q.tracked.push({ seq: ++q.seq, event, state: 'pending' });
        q.log(`redelivering ${event.key} (ETag ${event.etag ?? '?'}; ${event.attempts} attempt(s) before)`);
      } catch (err) {
        // A torn file cannot happen with tmp + rename; anything unreadable is kept aside, not lost.
        q.log(`unreadable pending event ${name}: ${(err as Error).message}; moved to failed/`);
        await rename(join(q.pendingDir, name), join(q.failedDir, name)).catch(() => undefined);
      }
    }
    q.schedule();
    return q;
  }

  /** A position in the stream of received events: pass it as `after` to wait for a later upload's event. */
  cursor(): number {
    return this.seq;
  }

  /** Persists one S3 event record, then queues its delivery. Resolves once it is on disk. */
  async enqueue(record: S3EventRecord & { key: string }): Promise<void> {
    const now = Date.now();
    const id = `${String(now).padStart(15, '0')}-${String(++this.counter).padStart(6, '0')}-${randomBytes(3).toString('hex')}`;
    const { key: _decoded, ...raw } = record;
    const event: QueuedEvent = {
      id,
      key: record.key,
      ...(record.s3.object.eTag ? { etag: stripQuotes(record.s3.object.eTag) } : {}),
      ...(record.s3.object.sequencer !== undefined ? { sequencer: String(record.s3.object.sequencer) } : {}),
      record: raw as S3EventRecord,
      receivedAt: new Date(now).toISOString(),
      attempts: 0,
    };
    const t: Tracked = { seq: ++this.seq, event, state: 'pending' };
    // Written in arrival order; delivery waits for the file, so nothing is handled before it is durable.
    const written = this.serialWrite(() => this.persist(this.pendingDir, event));
    this.tracked.push(t);
    t.written = written;
    await written;
    this.schedule();
  }

  /**
   * Resolves with the outcomes of the build of `key`'s event once it was delivered and handled;
   * rejects with the build's error when its attempts are exhausted, or with a timeout naming the key.
   */
  settled(key: string, opts: SettledOptions = {}): Promise<BuildOutcome[]> {
    return new Promise<BuildOutcome[]>((resolve, reject) => {
      const timeoutMs = opts.timeoutMs ?? 60_000;
      let timer: NodeJS.Timeout | undefined;
      const waiter: Waiter = {
        key,
        opts,
        resolve: (o) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          resolve(o);
        },
        reject: (e) => {
          clearTimeout(timer);
          this.waiters.delete(waiter);
          reject(e);
        },
      };
      this.waiters.add(waiter);
      timer = setTimeout(
        () => waiter.reject(new SettleTimeoutError(this.describeWait(key, opts, timeoutMs))),
        timeoutMs,
      );
      this.notify(waiter);
    });
  }

  /** True when no event waits for delivery or retry and no build runs. */
  isIdle(): boolean {
    return this.tracked.every((t) => t.state === 'done' || t.state === 'failed');
  }

  /** Resolves when no event is pending or running (it follows the queue's state, no fixed wait). */
  idle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.add(r));
  }

  /** Events in pending/ (waiting, backing off or running). */
  pendingCount(): number {
    return this.tracked.filter((t) => t.state === 'pending' || t.state === 'running').length;
  }

  /** Stops starting deliveries and waits for the one running; pending events stay on disk for the next start. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.wake);
    await this.running;
    await this.writes;
    for (const w of this.waiters) w.reject(new Error(`the local stack stopped before ${w.key} settled`));
  }

  private serialWrite(fn: () => Promise<void>): Promise<void> {
    const p = this.writes.then(fn);
    this.writes = p.catch(() => undefined);
    return p;
  }

  private async persist(dir: string, event: QueuedEvent): Promise<void> {
    const final = join(dir, `${event.id}.json`);
    const tmp = `${final}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(`${JSON.stringify(event, null, 2)}\n`);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, final);
  }

  private schedule(): void {
    if (this.stopped || this.running) return;
    clearTimeout(this.wake);
    const now = Date.now();
    const waiting = this.tracked.filter((t) => t.state === 'pending');
    if (waiting.length === 0) {
      this.checkIdle();
      return;
    }
    const due = waiting.find((t) => (t.event.notBefore ?? 0) <= now);
    if (!due) {
      // Only backoffs remain: wake when the earliest one is due.
      const next = Math.min(...waiting.map((t) => t.event.notBefore ?? now));
      this.wake = setTimeout(() => this.schedule(), Math.max(0, next - now));
      return;
    }
    this.running = this.deliver(due).finally(() => {
      this.running = undefined;
      this.schedule();
    });
  }

  private async deliver(t: Tracked): Promise<void> {
    const { event } = t;
    await t.written?.catch((err: Error) =>
      this.log(`delivering ${event.key} although its event could not be persisted: ${err.message}`),
    );
    t.state = 'running';
    event.attempts += 1;
    delete event.notBefore;
    // The attempt is on disk before it starts: a crash now counts it, as Lambda counts a crashed invoke.
    await this.serialWrite(() => this.persist(this.pendingDir, event));
    let outcomes: BuildOutcome[] | undefined;
    let error: Error | undefined;
    try {
      outcomes = (await this.opts.deliver({ Records: [event.record] }, event.attempts)) ?? [];
      const busy = outcomes.filter((o) => o.status === 'BUSY');
      if (busy.length > 0) {
        error = new RetryableOutcomeError(
          `another builder holds the lease of ${busy.map((o) => o.version).join(', ')}`,
        );
      }
    } catch (err) {
      error = err instanceof Error ? err : new Error(String(err));
    }

    if (!error && outcomes) {
      await this.serialWrite(() => unlink(join(this.pendingDir, `${event.id}.json`)));
      t.state = 'done';
      t.outcomes = outcomes;
      for (const o of outcomes)
        this.log(`build ${o.status} ${o.version}${'reason' in o ? `: ${o.reason}` : ''}`);
    } else if (
      error &&
      (error as { retryable?: boolean }).retryable !== false &&
      event.attempts < this.maxAttempts
    ) {
      const delay = this.delays[Math.min(event.attempts - 1, this.delays.length - 1)] ?? 0;
      event.notBefore = Date.now() + delay;
      event.lastError = error.message;
      await this.serialWrite(() => this.persist(this.pendingDir, event));
      t.state = 'pending';
      this.log(
        `build of ${event.key} failed (attempt ${event.attempts} of ${this.maxAttempts}): ${error.message}; retrying in ${delay} ms`,
      );
    } else {
      event.lastError = error?.message ?? 'no outcome';
      event.failedAt = new Date().toISOString();
      await this.serialWrite(async () => {
        await this.persist(this.failedDir, event);
        await unlink(join(this.pendingDir, `${event.id}.json`));
      });
      t.state = 'failed';
      t.error = new BuildSettleError(
        `the build of ${event.key} (ETag ${event.etag ?? '?'}) failed after ${event.attempts} attempt(s): ${event.lastError}`,
        event.key,
        event.attempts,
        { cause: error },
      );
      this.log(`${t.error.message}; event moved to ${join(this.failedDir, `${event.id}.json`)}`);
    }
    for (const w of this.waiters) this.notify(w);
  }

  private matches(t: Tracked, key: string, opts: SettledOptions): boolean {
    return (
      t.event.key === key &&
      (opts.etag === undefined || t.event.etag === stripQuotes(opts.etag)) &&
      (opts.sequencer === undefined || t.event.sequencer === opts.sequencer) &&
      (opts.after === undefined || t.seq > opts.after)
    );
  }

  private notify(w: Waiter): void {
    const t = this.tracked.find(
      (x) => (x.state === 'done' || x.state === 'failed') && this.matches(x, w.key, w.opts),
    );
    if (!t) return;
    if (t.state === 'done') w.resolve(t.outcomes ?? []);
    else w.reject(t.error ?? new Error(`the build of ${w.key} failed`));
  }

  private describeWait(key: string, opts: SettledOptions, timeoutMs: number): string {
    const which = [
      opts.etag && `ETag ${stripQuotes(opts.etag)}`,
      opts.sequencer && `sequencer ${opts.sequencer}`,
    ]
      .filter(Boolean)
      .join(', ');
    const t = this.tracked.filter((x) => this.matches(x, key, opts)).at(-1);
    const state = !t
      ? 'its S3 event was never received'
      : t.state === 'running'
        ? `its build is still running (attempt ${t.event.attempts})`
        : `its event waits for attempt ${t.event.attempts + 1}${t.event.lastError ? ` (last error: ${t.event.lastError})` : ''}`;
    return `the build of ${key}${which ? ` (${which})` : ''} did not settle within ${timeoutMs} ms: ${state}`;
  }

  private checkIdle(): void {
    if (!this.isIdle()) return;
    for (const r of this.idleWaiters) r();
    this.idleWaiters.clear();
  }
}
