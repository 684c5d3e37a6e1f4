/**
 * One process per function, started the way Lambda starts it: the bundled asset copied to a task
 * directory (the runtime's AWS SDK beside it unless bundled), the layers unpacked under an /opt
 * equivalent with NODE_PATH on <opt>/nodejs/node_modules, MemorySize as the heap limit, the
 * template's environment plus the rehearsal's endpoints and credentials, and the runtime shim calling
 * the Handler for each invocation, one at a time, killed after the template's Timeout.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { cpSync, createWriteStream, existsSync, mkdirSync, symlinkSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FunctionSpec } from './functions';

const SHIM = fileURLToPath(new URL('./runtime-shim.mjs', import.meta.url));

export type InvokeResult =
  | { ok: true; value: unknown; ms: number }
  | { ok: false; error: { errorType: string; errorMessage: string; stack?: string }; ms: number };

export interface RuntimeOptions {
  /** Where the task and /opt directories, /tmp and the log go. */
  workDir: string;
  /** The repository's node_modules/@aws-sdk, standing in for the runtime's SDK. */
  sdkDir: string;
  /** Endpoints, credentials and region the rehearsal adds to the template's environment. */
  extraEnv: Record<string, string>;
}

type ShimMessage =
  | { type: 'ready' }
  | { type: 'init-error'; message: string }
  | {
      type: 'result';
      id: string;
      value?: unknown;
      error?: { errorType: string; errorMessage: string; stack?: string };
    };

export class FunctionRuntime {
  private child?: ChildProcess;
  private ready?: Promise<void>;
  private queue: Promise<unknown> = Promise.resolve();
  private readonly pending = new Map<string, (m: ShimMessage) => void>();
  private readonly taskDir: string;
  private readonly optDir: string;
  private readonly tmpDir: string;
  private readonly log: WriteStream;
  readonly logFile: string;
  coldStarts = 0;
  invocations = 0;
  /** Bytes the function wrote to stdout/stderr (what the runtime would ship to CloudWatch Logs). */
  logBytes = 0;

  constructor(
    readonly spec: FunctionSpec,
    private readonly opts: RuntimeOptions,
  ) {
    const base = join(opts.workDir, 'functions', spec.id);
    this.taskDir = join(base, 'task');
    this.optDir = join(base, 'opt');
    this.tmpDir = join(base, 'tmp');
    mkdirSync(this.tmpDir, { recursive: true });
    cpSync(spec.assetDir, this.taskDir, { recursive: true });
    if (!existsSync(join(this.taskDir, 'node_modules', '@aws-sdk'))) {
      mkdirSync(join(this.taskDir, 'node_modules'), { recursive: true });
      symlinkSync(opts.sdkDir, join(this.taskDir, 'node_modules', '@aws-sdk'));
    }
    // Lambda extracts every layer into /opt, later layers over earlier ones.
    for (const layer of spec.layers) cpSync(layer, this.optDir, { recursive: true });
    this.logFile = join(base, 'function.log');
    this.log = createWriteStream(this.logFile, { flags: 'a' });
  }

  private env(): Record<string, string> {
    return {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      LANG: 'en_US.UTF-8',
      TZ: ':UTC',
      LAMBDA_TASK_ROOT: this.taskDir,
      LAMBDA_RUNTIME_DIR: this.taskDir,
      _HANDLER: this.spec.handler,
      AWS_EXECUTION_ENV: `AWS_Lambda_${this.spec.runtime}`,
      AWS_LAMBDA_FUNCTION_NAME: this.spec.name,
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(this.spec.memoryMb),
      AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${this.spec.name}`,
      AWS_LAMBDA_LOG_STREAM_NAME: 'rehearsal',
      AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      NODE_PATH: [join(this.optDir, 'nodejs', 'node_modules')].join(':'),
      TMPDIR: this.tmpDir,
      ...this.opts.extraEnv,
      ...this.spec.environment,
    };
  }

  private start(): Promise<void> {
    this.coldStarts++;
    const child = spawn(
      process.execPath,
      [
        `--max-old-space-size=${this.spec.memoryMb}`,
        SHIM,
        this.taskDir,
        this.spec.handler,
        this.spec.name,
        String(this.spec.memoryMb),
      ],
      { cwd: this.taskDir, env: this.env(), stdio: ['ignore', 'pipe', 'pipe', 'ipc'] },
    );
    this.child = child;
    const sink = (chunk: Buffer) => {
      this.logBytes += chunk.length;
      this.log.write(chunk);
    };
    child.stdout?.on('data', sink);
    child.stderr?.on('data', sink);
    return new Promise<void>((resolve, reject) => {
      child.on('message', (raw: ShimMessage) => {
        if (raw.type === 'ready') resolve();
        else if (raw.type === 'init-error') reject(new Error(`Runtime.InitError: ${raw.message}`));
        else if (raw.type === 'result') this.pending.get(raw.id)?.(raw);
      });
      child.on('exit', (code, signal) => {
        if (this.child === child) {
          this.child = undefined;
          this.ready = undefined;
        }
        reject(new Error(`the function process exited during init (code ${code}, signal ${signal})`));
        for (const [id, cb] of this.pending) {
          cb({
            type: 'result',
            id,
            error: {
              errorType: 'Runtime.ExitError',
              errorMessage: `exited (code ${code}, signal ${signal})`,
            },
          });
        }
      });
    });
  }

  /** Starts the process (cold start) now, so init errors show before the story needs the function. */
  warm(): Promise<void> {
    this.ready ??= this.start();
    return this.ready;
  }

  /** One invocation; concurrent calls queue (one instance, as with reserved concurrency 1). */
  invoke(event: unknown): Promise<InvokeResult> {
    const run = this.queue.then(() => this.invokeNow(event));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async invokeNow(event: unknown): Promise<InvokeResult> {
    const t0 = performance.now();
    const ms = () => Math.round(performance.now() - t0);
    try {
      await this.warm();
    } catch (err) {
      this.ready = undefined;
      return { ok: false, error: { errorType: 'Runtime.InitError', errorMessage: String(err) }, ms: ms() };
    }
    this.invocations++;
    const id = randomUUID();
    const timeoutMs = this.spec.timeoutSeconds * 1000;
    const child = this.child;
    return new Promise<InvokeResult>((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        // Lambda ends the sandbox at the deadline; the next invocation is a cold start.
        child?.kill('SIGKILL');
        resolve({
          ok: false,
          error: {
            errorType: 'Sandbox.Timedout',
            errorMessage: `Task timed out after ${this.spec.timeoutSeconds} seconds`,
          },
          ms: ms(),
        });
      }, timeoutMs + 500);
      this.pending.set(id, (m) => {
        clearTimeout(timer);
        this.pending.delete(id);
        if (m.type !== 'result') return;
        resolve(m.error ? { ok: false, error: m.error, ms: ms() } : { ok: true, value: m.value, ms: ms() });
      });
      child?.send({
        type: 'invoke',
        id,
        event,
        timeoutMs,
        requestId: randomUUID(),
        functionArn: this.spec.arn,
      });
    });
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 2000))]);
      if (child.exitCode === null) child.kill('SIGKILL');
    }
    await new Promise((r) => this.log.end(r));
  }
}
