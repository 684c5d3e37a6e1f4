/** Child-process plumbing for the stand-ins that run outside this process (s3rver, DynamoDB Local). */
import type { ChildProcess } from 'node:child_process';
import { type AddressInfo, connect, createServer } from 'node:net';
import type { Readable } from 'node:stream';
import { HOST } from './common';

const STOP_GRACE_MS = 5_000;

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, HOST, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export function acceptsConnections(port: number): Promise<boolean> {
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
export function collectTail(stream: Readable | null, limit = 8_192): () => string {
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
export function exitOf(child: ChildProcess): Promise<void> {
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
export async function terminate(
  child: ChildProcess,
  exited: Promise<void>,
  signal: NodeJS.Signals | undefined,
) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  if (signal) child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), STOP_GRACE_MS);
  await exited;
  clearTimeout(timer);
}
