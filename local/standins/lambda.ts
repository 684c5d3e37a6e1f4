/**
 * A stand-in for the Lambda Invoke REST API on loopback, so `@aws-sdk/client-lambda` (endpoint from
 * AWS_ENDPOINT_URL_LAMBDA) works unchanged: `POST /2015-03-31/functions/{name}/invocations` with
 * `X-Amz-Invocation-Type` `RequestResponse` (200 + payload; a function error as 200 with
 * `X-Amz-Function-Error: Unhandled`) or `Event` (202 at once; run later, retried twice on error, then
 * recorded as failed with a log line, as an on-failure destination would receive it).
 *
 * Each invocation runs in a pool of worker processes per function (lambda-worker.ts; concurrency
 * default the number of cores), each started with `--max-old-space-size` of the function's memory and
 * the function's environment, reused warm like Lambda instances. A worker that dies mid-invocation
 * (SIGKILL, OOM) fails that invocation ("Runtime exited") and is replaced.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { HOST } from './common';

const WORKER = fileURLToPath(new URL('./lambda-worker.ts', import.meta.url));
/** Workers start in the project root, where `--import tsx` resolves. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface LambdaFunctionDef {
  name: string;
  /** Absolute path of the handler module (TypeScript is fine: workers run under tsx). */
  module: string;
  exportName?: string;
  memoryMb?: number;
  timeoutMs?: number;
  env?: Record<string, string | undefined>;
}

export interface LambdaStandInOptions {
  functions: LambdaFunctionDef[];
  /** Worker processes per function (default: the number of cores). */
  concurrency?: number;
  port?: number;
  /** Retries of a failed Event invocation (Lambda: 2). */
  retries?: number;
  /** Delay before a retry (Lambda waits about 1 then 2 minutes; locally short). */
  retryDelayMs?: number;
  log?: (line: string) => void;
}

export interface FailedInvocation {
  functionName: string;
  requestId: string;
  event: unknown;
  attempts: number;
  error: { errorType: string; errorMessage: string };
}

export interface LambdaStandIn {
  endpoint: string;
  port: number;
  /** Event invocations that failed every attempt (what the on-failure destination would get). */
  failed: FailedInvocation[];
  invocations: { functionName: string; type: 'Event' | 'RequestResponse'; requestId: string; ok?: boolean }[];
  /** Resolves when nothing is queued, running or waiting for a retry. */
  idle(): Promise<void>;
  stop(): Promise<void>;
}

type Outcome =
  | { ok: true; payload: unknown }
  | { ok: false; error: { errorType: string; errorMessage: string } };

interface Job {
  requestId: string;
  event: unknown;
  resolve(o: Outcome): void;
}

interface Worker {
  child: ChildProcess;
  ready: Promise<void>;
  busy?: { id: string; job: Job; timer: NodeJS.Timeout };
}

class FunctionPool {
  private readonly workers = new Set<Worker>();
  private readonly queue: Job[] = [];
  private stopped = false;

  constructor(
    readonly def: LambdaFunctionDef,
    private readonly size: number,
    private readonly log: (line: string) => void,
  ) {}

  run(requestId: string, event: unknown): Promise<Outcome> {
    return new Promise((resolve) => {
      this.queue.push({ requestId, event, resolve });
      this.pump();
    });
  }

  private spawn(): Worker {
    const memoryMb = this.def.memoryMb ?? 1024;
    const child = fork(WORKER, [], {
      execArgv: ['--import', 'tsx', `--max-old-space-size=${memoryMb}`],
      env: {
        ...(this.def.env ?? {}),
        PATH: process.env.PATH,
        AWS_LAMBDA_FUNCTION_NAME: this.def.name,
        AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(memoryMb),
        VICINITY_LAMBDA_MODULE: this.def.module,
        VICINITY_LAMBDA_EXPORT: this.def.exportName ?? 'handler',
      },
      cwd: ROOT,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const w: Worker = {
      child,
      ready: new Promise((ok) => {
        child.once('message', () => ok());
        child.once('exit', () => ok());
      }),
    };
    child.on(
      'message',
      (m: { type: string; id?: string; ok?: boolean; payload?: unknown; error?: Outcome }) => {
        if (m.type !== 'result' || !w.busy || w.busy.id !== m.id) return;
        const { job, timer } = w.busy;
        clearTimeout(timer);
        w.busy = undefined;
        job.resolve(m.ok ? { ok: true, payload: m.payload } : { ok: false, error: m.error as never });
        this.pump();
      },
    );
    child.once('exit', (code, signal) => {
      this.workers.delete(w);
      if (w.busy) {
        clearTimeout(w.busy.timer);
        const job = w.busy.job;
        w.busy = undefined;
        this.log(
          `lambda ${this.def.name}: worker ${child.pid} exited (${signal ?? code}) during ${job.requestId}`,
        );
        job.resolve({
          ok: false,
          error: {
            errorType: 'Runtime.ExitError',
            errorMessage: `Runtime exited with error: ${signal ?? `exit status ${code}`}`,
          },
        });
      }
      this.pump();
    });
    this.workers.add(w);
    return w;
  }

  private pump(): void {
    if (this.stopped) return;
    while (this.queue.length) {
      let w = [...this.workers].find((x) => !x.busy);
      if (!w && this.workers.size < this.size) w = this.spawn();
      if (!w) return;
      const job = this.queue.shift() as Job;
      const id = randomUUID();
      const timeoutMs = this.def.timeoutMs ?? 900_000;
      const worker = w;
      worker.busy = {
        id,
        job,
        timer: setTimeout(() => {
          this.log(`lambda ${this.def.name}: ${job.requestId} timed out after ${timeoutMs} ms`);
          worker.child.kill('SIGKILL');
        }, timeoutMs + 2_000),
      };
      void worker.ready.then(() =>
        worker.child.send({
          type: 'invoke',
          id,
          requestId: job.requestId,
          functionName: this.def.name,
          memoryMb: this.def.memoryMb ?? 1024,
          timeoutMs,
          event: job.event,
        }),
      );
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const job of this.queue.splice(0)) {
      job.resolve({ ok: false, error: { errorType: 'Stopped', errorMessage: 'the stand-in stopped' } });
    }
    await Promise.all(
      [...this.workers].map(
        (w) =>
          new Promise<void>((r) => {
            if (w.child.exitCode !== null || w.child.signalCode !== null) return r();
            w.child.once('exit', () => r());
            w.child.kill('SIGKILL');
          }),
      ),
    );
  }
}

export async function startLambda(opts: LambdaStandInOptions): Promise<LambdaStandIn> {
  const log = opts.log ?? ((line: string) => console.error(line));
  const size = Math.max(1, opts.concurrency ?? availableParallelism());
  const retries = opts.retries ?? 2;
  const retryDelayMs = opts.retryDelayMs ?? 500;
  const pools = new Map(opts.functions.map((f) => [f.name, new FunctionPool(f, size, log)]));
  const failed: FailedInvocation[] = [];
  const invocations: LambdaStandIn['invocations'] = [];
  let inFlight = 0;
  let waiters: (() => void)[] = [];
  const settle = () => {
    if (inFlight === 0) {
      const w = waiters;
      waiters = [];
      for (const r of w) r();
    }
  };

  const runEvent = async (pool: FunctionPool, requestId: string, event: unknown) => {
    try {
      for (let attempt = 1; ; attempt++) {
        const o = await pool.run(requestId, event);
        if (o.ok) return;
        if (attempt > retries) {
          failed.push({ functionName: pool.def.name, requestId, event, attempts: attempt, error: o.error });
          log(
            `lambda ${pool.def.name}: Event invocation ${requestId} failed after ${attempt} attempts: ${o.error.errorType}: ${o.error.errorMessage}`,
          );
          return;
        }
        await new Promise((r) => setTimeout(r, retryDelayMs * attempt));
      }
    } finally {
      inFlight--;
      settle();
    }
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const requestId = randomUUID();
    const m = /^\/2015-03-31\/functions\/([^/]+)\/invocations\/?(\?.*)?$/.exec(req.url ?? '');
    const send = (status: number, body: string, headers: Record<string, string> = {}) => {
      res.writeHead(status, {
        'content-type': 'application/json',
        'x-amzn-requestid': requestId,
        ...headers,
      });
      res.end(body);
    };
    if (req.method !== 'POST' || !m) {
      return send(404, JSON.stringify({ message: 'Unknown operation' }), {
        'x-amzn-errortype': 'UnknownOperationException',
      });
    }
    // The SDK sends a name, a partial ARN or a full ARN: the name is the part after "function:".
    const raw = decodeURIComponent(m[1] as string);
    const name = raw.includes(':function:') ? (raw.split(':function:')[1] as string).split(':')[0] : raw;
    const pool = pools.get(name as string);
    if (!pool) {
      return send(404, JSON.stringify({ Type: 'User', message: `Function not found: ${raw}` }), {
        'x-amzn-errortype': 'ResourceNotFoundException',
      });
    }
    let event: unknown = {};
    try {
      event = chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : {};
    } catch {
      return send(400, JSON.stringify({ Type: 'User', message: 'Could not parse request body into json' }), {
        'x-amzn-errortype': 'InvalidRequestContentException',
      });
    }
    const type = String(req.headers['x-amz-invocation-type'] ?? 'RequestResponse');
    if (type === 'Event') {
      invocations.push({ functionName: pool.def.name, type: 'Event', requestId });
      inFlight++;
      void runEvent(pool, requestId, event);
      return send(202, '');
    }
    if (type !== 'RequestResponse') {
      return send(400, JSON.stringify({ Type: 'User', message: `Unsupported invocation type ${type}` }), {
        'x-amzn-errortype': 'InvalidParameterValueException',
      });
    }
    inFlight++;
    try {
      const o = await pool.run(requestId, event);
      invocations.push({ functionName: pool.def.name, type: 'RequestResponse', requestId, ok: o.ok });
      if (o.ok) return send(200, JSON.stringify(o.payload ?? null), { 'x-amz-executed-version': '$LATEST' });
      return send(200, JSON.stringify(o.error), {
        'x-amz-executed-version': '$LATEST',
        'x-amz-function-error': 'Unhandled',
      });
    } finally {
      inFlight--;
      settle();
    }
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ message: String(err) }));
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 0, HOST, () => ok());
  });
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://${HOST}:${port}`,
    port,
    failed,
    invocations,
    idle: () =>
      inFlight === 0
        ? Promise.resolve()
        : new Promise<void>((r) => {
            waiters.push(r);
          }),
    stop: async () => {
      await new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      });
      await Promise.all([...pools.values()].map((p) => p.stop()));
    },
  };
}
