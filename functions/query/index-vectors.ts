import { open } from 'node:fs/promises';

const HEADER_BYTES = 96;

/**
 * Every vector of an hnswlib index file, by label, as one Float32Array — read straight from the
 * level-0 block of the (already verified) file in /tmp. Exact search over a few thousand allowed
 * items needs the vectors as a flat array: hnswlib-node's getPoint costs ~8 µs a call, a scan of a
 * Float32Array ~0.1 µs per 64-d vector. Cosine indexes hold unit vectors, as hnswlib normalised them.
 */
export async function readIndexVectors(path: string, dims: number, count: number): Promise<Float32Array> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(HEADER_BYTES);
    await fh.read(head, 0, HEADER_BYTES, 0);
    const u64 = (off: number) => Number(head.readBigUInt64LE(off));
    const stored = u64(16);
    const per = u64(24);
    const labelOffset = u64(32);
    const dataOffset = u64(40);
    if (stored !== count || per % 4 !== 0 || dataOffset + 4 * dims > per) {
      throw new Error(`index file ${path} does not have the layout its manifest describes`);
    }
    const out = new Float32Array(count * dims);
    const perChunk = Math.max(1, Math.floor((8 << 20) / per));
    // Its own ArrayBuffer at offset 0, so element starts (multiples of `per`) stay 4-byte aligned.
    const buf = Buffer.from(new ArrayBuffer(perChunk * per));
    const floats = new Float32Array(buf.buffer);
    for (let first = 0; first < count; first += perChunk) {
      const n = Math.min(perChunk, count - first);
      const { bytesRead } = await fh.read(buf, 0, n * per, HEADER_BYTES + first * per);
      if (bytesRead !== n * per) throw new Error(`index file ${path} is shorter than its header says`);
      for (let j = 0; j < n; j++) {
        const base = j * per;
        const label =
          buf.readUInt32LE(base + labelOffset) + buf.readUInt32LE(base + labelOffset + 4) * 2 ** 32;
        if (label >= count)
          throw new Error(`index file ${path} holds label ${label} beyond its count ${count}`);
        // A plain loop: a subarray per element costs more than the copy itself.
        const at = (base + dataOffset) / 4;
        const to = label * dims;
        for (let d = 0; d < dims; d++) out[to + d] = floats[at + d] as number;
      }
    }
    return out;
  } finally {
    await fh.close();
  }
}
