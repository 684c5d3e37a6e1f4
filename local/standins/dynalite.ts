/** The default DynamoDB stand-in: dynalite, in this process, on LevelDB. */
import { mkdir } from 'node:fs/promises';
import type { Server } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import { type DynamoStandIn, HOST } from './common';

export interface StartDynaliteOptions {
  /** LevelDB directory for persistence; in-memory when undefined. */
  path?: string;
  /** 0 or undefined: any free port. */
  port?: number;
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
