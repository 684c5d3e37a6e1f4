import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { type FilePart, PART_BYTES } from './manifest';

export interface FileDigest {
  bytes: number;
  sha256: string;
  parts: FilePart[];
}

/** One streaming pass over a file: whole-file sha256 plus one sha256 per part of ≤ partBytes. */
export async function digestFile(path: string, partBytes = PART_BYTES): Promise<FileDigest> {
  const whole = createHash('sha256');
  const parts: FilePart[] = [];
  let part = createHash('sha256');
  let partStart = 0;
  let partLen = 0;
  let total = 0;
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
    whole.update(chunk);
    let off = 0;
    while (off < chunk.length) {
      const take = Math.min(partBytes - partLen, chunk.length - off);
      part.update(chunk.subarray(off, off + take));
      partLen += take;
      off += take;
      if (partLen === partBytes) {
        parts.push({ offset: partStart, bytes: partLen, sha256: part.digest('hex') });
        partStart += partLen;
        partLen = 0;
        part = createHash('sha256');
      }
    }
    total += chunk.length;
  }
  if (partLen > 0 || parts.length === 0)
    parts.push({ offset: partStart, bytes: partLen, sha256: part.digest('hex') });
  return { bytes: total, sha256: whole.digest('hex'), parts };
}
