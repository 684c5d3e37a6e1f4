'use strict';
// s3rver in its own process: its ListObjectsV2 continuation tokens use DES, which Node 17+ only
// offers with --openssl-legacy-provider, a flag we do not want on the main process.
// Started by startS3() in s3rver.ts with an IPC channel. Arguments:
//   --port=N (or S3RVER_PORT; 0 = any free port)  --directory=D (or S3RVER_DIRECTORY)  --bucket=B (repeatable)
// Messages to the parent: {type:'listening', port} once, {type:'event', event} per s3rver event,
// {type:'error', message} before a failed start exits.
// Messages from the parent: {type:'stop'}.

// s3rver's filesystem store keeps keys as directories and deletes a directory once it is empty. Under
// concurrent writes and deletes under one prefix (a build's staging chunks written by some tasks while
// others clean up) that races: a put's mkdir, then the delete's rmdir, then the put's open → ENOENT on a
// write stream with no error listener, which killed the whole stand-in; a listing's readdir/stat of a
// path just removed answered 500. Real S3 has no directories, so: keep them (empty ones list nothing),
// and let a listing skip what vanished under it. Patched before s3rver loads, which binds `walk` then.
const fs = require('node:fs');
const path = require('node:path');
const utils = require('s3rver/lib/utils');
utils.walk = function* walk(dir, recurseFilter) {
  let names;
  try {
    names = fs.readdirSync(dir);
  } catch (err) {
    if (err.code === 'ENOENT') return;
    throw err;
  }
  for (const name of names) {
    const filePath = path.posix.join(dir, name);
    let stats;
    try {
      stats = fs.statSync(filePath);
    } catch (err) {
      if (err.code === 'ENOENT') continue;
      throw err;
    }
    if (!stats.isDirectory()) yield filePath;
    else if (!recurseFilter || recurseFilter(filePath)) yield* walk(filePath, recurseFilter);
  }
};
const FilesystemStore = require('s3rver/lib/stores/filesystem');
FilesystemStore.prototype.deleteObject = async function deleteObject(bucket, key) {
  await Promise.all(
    ['object', 'object.md5', 'metadata.json'].map((kind) =>
      fs.promises.unlink(this.getResourcePath(bucket, key, kind)).catch((err) => {
        if (err.code !== 'ENOENT') throw err;
      }),
    ),
  );
};

const S3rver = require('s3rver');

function parseArgs(argv) {
  const out = { port: process.env.S3RVER_PORT, directory: process.env.S3RVER_DIRECTORY, buckets: [] };
  for (const arg of argv) {
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    const value = eq === -1 ? '' : arg.slice(eq + 1);
    if (name === '--port') out.port = value;
    else if (name === '--directory') out.directory = value;
    else if (name === '--bucket' && value) out.buckets.push(value);
    else throw new Error(`unknown argument: ${arg}`);
  }
  const port = Number(out.port ?? 0);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`bad port: ${out.port}`);
  if (!out.directory) throw new Error('--directory is required');
  return { port, directory: out.directory, buckets: out.buckets };
}

function send(message) {
  return new Promise((resolve) => {
    if (!process.connected) return resolve();
    process.send(message, () => resolve());
  });
}

async function main() {
  const { port, directory, buckets } = parseArgs(process.argv.slice(2));
  const server = new S3rver({
    address: '127.0.0.1',
    port,
    silent: true,
    directory,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  server.on('event', (event) => void send({ type: 'event', event }));

  let stopping = false;
  const stop = async (code) => {
    if (stopping) return;
    stopping = true;
    try {
      const closing = server.close();
      // Node closes idle keep-alive sockets on close(); drop busy ones too so stop is prompt.
      server.httpServer?.closeAllConnections?.();
      await closing;
    } catch {
      // Already closed or never listening: exiting is all that is left.
    }
    process.exit(code);
  };

  // The parent going away (even by SIGKILL) closes the IPC channel: never outlive it.
  process.on('disconnect', () => void stop(0));
  process.on('message', (message) => {
    if (message && message.type === 'stop') void stop(0);
  });
  process.on('SIGTERM', () => void stop(0));

  const address = await server.run();
  await send({ type: 'listening', port: address.port });
  if (!process.connected) await stop(0);
}

async function fail(err) {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`s3rver-process: ${message}\n`);
  await send({ type: 'error', message });
  process.exit(1);
}

// s3rver's listen() leaves a bind error (EADDRINUSE) as an unhandled 'error' event, not a rejection.
process.on('uncaughtException', (err) => void fail(err));
main().catch(fail);
