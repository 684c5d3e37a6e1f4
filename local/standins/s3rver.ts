/** The S3 stand-in: s3rver in a child process, forwarding its S3 event notifications over IPC. */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { collectTail, exitOf, terminate } from './child-process';
import { HOST } from './common';

/** An S3 notification payload, as s3rver emits it (one record per event). */
export interface S3EventBatch {
  Records: unknown[];
}

export interface S3StandIn {
  endpoint: string;
  port: number;
  onEvent(cb: (event: S3EventBatch) => void): void;
  stop(): Promise<void>;
}

export interface StartS3Options {
  directory: string;
  /** 0 or undefined: any free port. */
  port?: number;
  buckets?: string[];
}

const S3RVER_PROCESS = fileURLToPath(new URL('./s3rver-process.cjs', import.meta.url));
const S3_START_TIMEOUT_MS = 15_000;

type S3ChildMessage =
  | { type: 'listening'; port: number }
  | { type: 'event'; event: S3EventBatch }
  | { type: 'error'; message: string };

function asS3ChildMessage(m: unknown): S3ChildMessage | undefined {
  if (typeof m !== 'object' || m === null || !('type' in m)) return undefined;
  if (m.type === 'listening' && 'port' in m && typeof m.port === 'number')
    return { type: 'listening', port: m.port };
  if (m.type === 'error' && 'message' in m && typeof m.message === 'string') {
    return { type: 'error', message: m.message };
  }
  if (m.type === 'event' && 'event' in m && typeof m.event === 'object' && m.event !== null) {
    const event = m.event;
    if ('Records' in event && Array.isArray(event.Records))
      return { type: 'event', event: { Records: event.Records } };
  }
  return undefined;
}

/**
 * s3rver in a child process: its paginated ListObjectsV2 needs `--openssl-legacy-provider` (DES
 * continuation tokens), which we keep out of the main process. The child exits when the IPC channel
 * closes, so it never outlives its parent.
 */
export async function startS3(opts: StartS3Options): Promise<S3StandIn> {
  const args = [
    '--openssl-legacy-provider',
    S3RVER_PROCESS,
    `--port=${opts.port ?? 0}`,
    `--directory=${opts.directory}`,
    ...(opts.buckets ?? []).map((b) => `--bucket=${b}`),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
  const output = collectTail(child.stderr);
  const exited = exitOf(child);
  let stopping = false;

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`s3rver did not start within ${S3_START_TIMEOUT_MS} ms: ${output()}`)),
        S3_START_TIMEOUT_MS,
      );
      const done = () => {
        clearTimeout(timer);
        child.off('message', onMessage);
        child.off('exit', onExit);
        child.off('error', onError);
      };
      const onMessage = (raw: unknown) => {
        const m = asS3ChildMessage(raw);
        if (m?.type === 'listening') {
          done();
          resolve(m.port);
        } else if (m?.type === 'error') {
          done();
          reject(new Error(`s3rver failed to start: ${m.message}`));
        }
      };
      const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
        done();
        reject(new Error(`s3rver exited before listening (code ${code}, signal ${signal}): ${output()}`));
      };
      const onError = (err: Error) => {
        done();
        reject(err);
      };
      child.on('message', onMessage);
      child.on('exit', onExit);
      child.on('error', onError);
    });
  } catch (err) {
    await terminate(child, exited, 'SIGKILL');
    throw err;
  }

  const listeners: Array<(event: S3EventBatch) => void> = [];
  child.on('message', (raw: unknown) => {
    const m = asS3ChildMessage(raw);
    if (m?.type !== 'event') return;
    for (const cb of listeners) {
      // One failing listener must not take down the process or starve the others.
      try {
        cb(m.event);
      } catch (err) {
        process.stderr.write(`s3 stand-in: event listener threw: ${String(err)}\n`);
      }
    }
  });
  // An unhandled 'error' on the child (e.g. a failed send) would crash the process that hosts us.
  child.on('error', (err) => process.stderr.write(`s3 stand-in: ${err.message}\n`));
  child.on('exit', (code, signal) => {
    if (!stopping) {
      process.stderr.write(
        `s3 stand-in: s3rver exited unexpectedly (code ${code}, signal ${signal}) ${output()}\n`,
      );
    }
  });

  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://${HOST}:${port}`,
    port,
    onEvent(cb) {
      listeners.push(cb);
    },
    stop() {
      stopping = true;
      stopped ??= (async () => {
        // The channel can close between the check and the send: fall back to a signal.
        if (child.connected) child.send({ type: 'stop' }, (err) => err && child.kill('SIGTERM'));
        else child.kill('SIGTERM');
        await terminate(child, exited, undefined);
      })();
      return stopped;
    },
  };
}
