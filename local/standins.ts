/**
 * Local wire-protocol stand-ins for S3 and DynamoDB, used by `npm start` and the integration tests.
 * The use-case code talks to them through the same SDK clients it uses against AWS.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import { type AddressInfo, connect, createServer } from 'node:net';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import {
  CreateTableCommand,
  DescribeTableCommand,
  type DynamoDBClient,
  ListTablesCommand,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { createDynamoClient } from '../functions/adapters/aws-clients';

/** s3rver only accepts this pair unless told otherwise; dynalite and DynamoDB Local accept anything. */
export const LOCAL_CREDENTIALS = { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } as const;
export const LOCAL_REGION = 'us-east-1';

const HOST = '127.0.0.1';

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

export interface DynamoStandIn {
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

export interface StartS3Options {
  directory: string;
  /** 0 or undefined: any free port. */
  port?: number;
  buckets?: string[];
}

export interface StartDynaliteOptions {
  /** LevelDB directory for persistence; in-memory when undefined. */
  path?: string;
  /** 0 or undefined: any free port. */
  port?: number;
}

const S3RVER_PROCESS = fileURLToPath(new URL('./s3rver-process.cjs', import.meta.url));
const S3_START_TIMEOUT_MS = 15_000;
const DYNAMODB_LOCAL_START_TIMEOUT_MS = 30_000;
const STOP_GRACE_MS = 5_000;

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

type DynaliteFactory = (options: {
  createTableMs: number;
  deleteTableMs: number;
  updateTableMs: number;
  path?: string;
}) => Server;

/** In-process dynalite: fast to start, but no TransactWriteItems (KNOWN-TRAPS). */
export async function startDynalite(opts: StartDynaliteOptions = {}): Promise<DynamoStandIn> {
  // Loaded lazily: dynalite is a dev dependency and has no type declarations.
  const dynalite = createRequire(import.meta.url)('dynalite') as DynaliteFactory;
  if (opts.path) await mkdir(opts.path, { recursive: true });
  const server = dynalite({
    createTableMs: 0,
    deleteTableMs: 0,
    updateTableMs: 0,
    ...(opts.path ? { path: opts.path } : {}),
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, HOST, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://${HOST}:${port}`,
    port,
    stop() {
      stopped ??= new Promise<void>((resolve, reject) => {
        // dynalite's close also closes LevelDB, so a later start on the same path can open it.
        server.close((err) => (err ? reject(err) : resolve()));
        server.closeAllConnections();
      });
      return stopped;
    },
  };
}

function emulatorDir(): string {
  const pkg = createRequire(import.meta.url).resolve('amplify-dynamodb-simulator/package.json');
  return join(dirname(pkg), 'emulator');
}

/**
 * AWS's DynamoDB Local (the jar shipped in amplify-dynamodb-simulator): slower to start than dynalite,
 * but it has TransactWriteItems and ReturnValuesOnConditionCheckFailure like AWS. Needs `java` on PATH.
 * It listens on all interfaces, not only 127.0.0.1.
 */
export async function startDynamoDbLocal(): Promise<DynamoStandIn> {
  const dir = emulatorDir();
  const jar = join(dir, 'DynamoDBLocal.jar');
  if (!existsSync(jar)) throw new Error(`DynamoDB Local jar not found at ${jar}`);
  // The free port is only probably free until java binds it: retry the rare collision.
  for (let attempt = 1; ; attempt++) {
    try {
      return await launchDynamoDbLocal(dir, jar, await freePort());
    } catch (err) {
      if (!(err instanceof PortInUseError) || attempt >= 3) throw err;
    }
  }
}

class PortInUseError extends Error {}

async function launchDynamoDbLocal(dir: string, jar: string, port: number): Promise<DynamoStandIn> {
  const child = spawn(
    'java',
    [
      // C1 only and the serial GC: roughly halves startup for a short-lived test server.
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      `-Djava.library.path=${join(dir, 'DynamoDBLocal_lib')}`,
      '-jar',
      jar,
      '-inMemory',
      '-sharedDb',
      '-disableTelemetry',
      '-port',
      String(port),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const stdout = collectTail(child.stdout);
  const stderr = collectTail(child.stderr);
  const exited = exitOf(child);
  let spawnError: NodeJS.ErrnoException | undefined;
  child.on('error', (err: NodeJS.ErrnoException) => {
    spawnError = err;
  });

  const endpoint = `http://${HOST}:${port}`;
  const client = createDynamoClient({
    region: LOCAL_REGION,
    dynamodbEndpoint: endpoint,
    credentials: LOCAL_CREDENTIALS,
  });
  const deadline = Date.now() + DYNAMODB_LOCAL_START_TIMEOUT_MS;
  try {
    for (;;) {
      if (spawnError) {
        throw spawnError.code === 'ENOENT'
          ? new Error('DynamoDB Local needs a Java runtime (17+), but `java` was not found on PATH')
          : new Error(`could not start DynamoDB Local: ${spawnError.message}`);
      }
      if (child.exitCode !== null || child.signalCode !== null) {
        const out = stderr() + stdout();
        const message = `DynamoDB Local exited during startup (code ${child.exitCode}, signal ${child.signalCode}). java output:\n${out}`;
        throw /BindException|Address already in use/.test(out)
          ? new PortInUseError(message)
          : new Error(message);
      }
      // A bare TCP probe first: the SDK's own retry backoff on refused connections adds ~1 s.
      if (await acceptsConnections(port)) {
        try {
          await client.send(new ListTablesCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(2_000) });
          break;
        } catch {
          // Listening but not answering yet.
        }
      }
      if (Date.now() > deadline) {
        throw new Error(
          `DynamoDB Local did not answer on ${endpoint} within ${DYNAMODB_LOCAL_START_TIMEOUT_MS} ms. ` +
            `java stderr:\n${stderr()}\njava stdout:\n${stdout()}`,
        );
      }
      await sleep(50);
    }
  } catch (err) {
    await terminate(child, exited, 'SIGKILL');
    throw err;
  } finally {
    client.destroy();
  }

  let stopped: Promise<void> | undefined;
  return {
    endpoint,
    port,
    stop() {
      stopped ??= terminate(child, exited, 'SIGTERM');
      return stopped;
    },
  };
}

/** Creates the bucket if it is missing. s3rver answers BucketAlreadyExists for a bucket it already has. */
export async function ensureBucket(s3: S3Client, bucket: string): Promise<void> {
  try {
    await s3.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (err) {
    if (errorName(err) === 'BucketAlreadyOwnedByYou' || errorName(err) === 'BucketAlreadyExists') return;
    throw err;
  }
}

/** Creates the single table (pk/sk strings, on demand) if missing, and waits until it is ACTIVE. */
export async function ensureTable(ddb: DynamoDBClient, table: string): Promise<void> {
  try {
    await ddb.send(
      new CreateTableCommand({
        TableName: table,
        AttributeDefinitions: [
          { AttributeName: 'pk', AttributeType: 'S' },
          { AttributeName: 'sk', AttributeType: 'S' },
        ],
        KeySchema: [
          { AttributeName: 'pk', KeyType: 'HASH' },
          { AttributeName: 'sk', KeyType: 'RANGE' },
        ],
        BillingMode: 'PAY_PER_REQUEST',
      }),
    );
  } catch (err) {
    if (errorName(err) !== 'ResourceInUseException') throw err;
  }
  // Own loop rather than the SDK waiter, whose 20 s minimum delay would dominate local runs.
  const deadline = Date.now() + 120_000;
  for (let delay = 50; ; delay = Math.min(delay * 2, 2_000)) {
    try {
      const { Table } = await ddb.send(new DescribeTableCommand({ TableName: table }));
      if (Table?.TableStatus === 'ACTIVE') return;
    } catch (err) {
      // Just-created tables can be briefly invisible on AWS.
      if (errorName(err) !== 'ResourceNotFoundException') throw err;
    }
    if (Date.now() > deadline) throw new Error(`table ${table} did not become ACTIVE`);
    await sleep(delay);
  }
}

function errorName(err: unknown): string | undefined {
  return err instanceof Error ? err.name : undefined;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function acceptsConnections(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, HOST);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Keeps the last few KB of a child's output for error messages, and drains the pipe so it never blocks. */
function collectTail(stream: Readable | null, limit = 8_192): () => string {
  let text = '';
  stream?.setEncoding('utf8');
  stream?.on('data', (chunk: string) => {
    text = (text + chunk).slice(-limit);
  });
  return () => text.trim();
}

/**
 * Resolves when the child has exited. Until then, a parent that exits without stopping it (uncaught
 * error, process.exit) takes it along. A SIGKILLed parent cannot: the s3rver child still exits on
 * disconnect, but the JVM is orphaned.
 */
function exitOf(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const done = () => {
      process.off('exit', killOnExit);
      resolve();
    };
    child.once('exit', done);
    // A failed spawn (e.g. ENOENT) emits 'close' but no 'exit'.
    child.once('close', done);
  });
}

/** Sends `signal` (if any), waits for exit, and SIGKILLs after a grace period. */
async function terminate(child: ChildProcess, exited: Promise<void>, signal: NodeJS.Signals | undefined) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  if (signal) child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}
