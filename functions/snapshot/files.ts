import { createHash } from 'node:crypto';
import { mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { BlobStore } from '../core/ports';
import type { SnapshotFile } from './manifest';

export class ChecksumError extends Error {}

/** The object is not in the bucket (e.g. retention deleted the version): not a corrupt file. */
export class ObjectMissingError extends ChecksumError {}

/** Runs `fn` over items with at most `limit` in flight. */
export async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  });
  await Promise.all(workers);
  return out;
}

export function localPathFor(cacheDir: string, key: string): string {
  return join(cacheDir, ...key.split('/'));
}

/**
 * Downloads one snapshot file with parallel ranged GETs straight into a `.part` file, hashing each
 * part as it lands (no second pass), and renames it only when every part matched the manifest.
 * A file already in the cache at its final name was verified before it got that name: reused.
 */
export async function fetchVerified(
  store: BlobStore,
  file: SnapshotFile,
  cacheDir: string,
  concurrency = 8,
): Promise<{ path: string; downloaded: boolean; verifyMs: number }> {
  const path = localPathFor(cacheDir, file.key);
  // Not there (or unreadable) just means not cached: download it.
  const existing = await stat(path).catch(() => undefined);
  if (existing?.size === file.bytes) return { path, downloaded: false, verifyMs: 0 };
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.part`;
  const fh = await open(tmp, 'w');
  // CPU time spent hashing, reported as the "verify" part of a load: it overlaps the download.
  let verifyMs = 0;
  try {
    if (file.bytes > 0) await fh.truncate(file.bytes);
    await mapLimit(file.parts, concurrency, async (part) => {
      if (part.bytes === 0) return;
      const body = await store.getStream(file.key, { offset: part.offset, bytes: part.bytes });
      if (!body) throw new ObjectMissingError(`${file.key} is missing from the bucket`);
      const h = createHash('sha256');
      let pos = part.offset;
      for await (const chunk of body as AsyncIterable<Buffer>) {
        const t = performance.now();
        h.update(chunk);
        verifyMs += performance.now() - t;
        await fh.write(chunk, 0, chunk.length, pos);
        pos += chunk.length;
      }
      if (pos - part.offset !== part.bytes || h.digest('hex') !== part.sha256) {
        throw new ChecksumError(
          `${file.key} bytes ${part.offset}-${part.offset + part.bytes - 1} do not match the manifest's sha256`,
        );
      }
    });
    await fh.close();
    await rename(tmp, path);
    return { path, downloaded: true, verifyMs };
  } catch (err) {
    // Cleanup of a download that already failed: `err` is what the caller needs and is rethrown; a
    // leftover `.part` file is never read (only renamed files are), and the next try uses a new name.
    await fh.close().catch(() => undefined);
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}
