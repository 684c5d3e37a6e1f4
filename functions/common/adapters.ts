import { S3Store } from '../adapters/s3-store';
import { type Log, silentLog } from '../core/ports';
import { type HandlerDeps, registryAdapters } from './wiring';

/**
 * The store, the registry and the lifecycle events of a handler that uses S3. Apart from wiring.ts on
 * purpose: a handler that needs no S3 (admin) must not import s3-store.ts at all, or its bundle's
 * entry would statically load the S3 client that lib-storage's chunk shares (esbuild code splitting).
 */
export function adapters(deps: HandlerDeps, log: Log = silentLog) {
  return { store: new S3Store(deps.s3, deps.config.bucket), ...registryAdapters(deps, log) };
}
