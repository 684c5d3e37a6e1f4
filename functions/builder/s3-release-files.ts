import type { Readable } from 'node:stream';
import type { ReleaseFiles } from '../adapters/readers/types';
import type { BlobStore } from '../core/ports';

/**
 * A release folder in the bucket, as the readers see it. Files with an ETag in `etags` are read only
 * as that ETag (If-Match, and the response's ETag compared): a file replaced mid-build throws
 * BlobChangedError instead of mixing two uploads into one index.
 */
export function s3ReleaseFiles(
  store: BlobStore,
  prefix: string,
  etags: Readonly<Record<string, string>> = {},
): ReleaseFiles {
  const options = (file: string) => (etags[file] ? { ifMatch: etags[file] } : undefined);
  return {
    async size(file) {
      return (await store.head(prefix + file))?.bytes;
    },
    async stream(file, range): Promise<Readable> {
      const s = await store.getStream(prefix + file, range, options(file));
      if (!s) throw new Error(`${file} disappeared from the release folder`);
      return s;
    },
    async range(file, offset, bytes) {
      if (bytes <= 0) return new Uint8Array(0);
      const s = await store.getStream(prefix + file, { offset, bytes }, options(file));
      if (!s) throw new Error(`${file} disappeared from the release folder`);
      const chunks: Buffer[] = [];
      for await (const c of s as AsyncIterable<Buffer>) chunks.push(c);
      return new Uint8Array(Buffer.concat(chunks));
    },
  };
}

/**
 * `aws s3 sync` uploads in no fixed order, so files named in release.json may arrive after it.
 * Waits up to `waitMs` for each; returns the files still missing and the total bytes of those present.
 */
export async function waitForFiles(
  files: ReleaseFiles,
  names: string[],
  waitMs: number,
  pollMs = 1000,
): Promise<{ missing: string[]; bytes: number }> {
  const deadline = Date.now() + waitMs;
  let missing = names;
  let bytes = 0;
  for (;;) {
    const sizes = await Promise.all(missing.map((f) => files.size(f)));
    for (const s of sizes) bytes += s ?? 0;
    missing = missing.filter((_, i) => sizes[i] === undefined);
    if (missing.length === 0 || Date.now() >= deadline) return { missing, bytes };
    await new Promise((r) => setTimeout(r, Math.min(pollMs, Math.max(0, deadline - Date.now()))));
  }
}
