import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type * as Hnsw from 'hnswlib-node';
import type { IndexBuilder, IndexEngine, SearchHit, VectorIndex } from '../core/ports';
import type { Metric } from '../core/release';
import { GroupedIndex } from './grouped-index';

// createRequire so Lambda's NODE_PATH (/opt/nodejs/node_modules, the layer) resolves the native addon;
// ESM `import` ignores NODE_PATH.
const hnswlib = createRequire(import.meta.url)('hnswlib-node') as typeof Hnsw;

export const HNSW_HEADER_BYTES = 96;

/** Bytes per element of an hnswlib index (KNOWN-TRAPS): data 4·dim, links 8·M (+ 4 count), label 8. */
export function hnswBytesPerElement(dims: number, M: number): number {
  return 4 * dims + 8 * M + 12;
}

export interface HnswHeader {
  maxElements: number;
  count: number;
  bytesPerElement: number;
  M: number;
}

/** Reads the 96-byte hnswlib header (size_t fields are 8 bytes, little-endian on x86_64). */
export function parseHnswHeader(buf: Buffer): HnswHeader {
  if (buf.length < HNSW_HEADER_BYTES) throw new Error(`index header is ${buf.length} bytes, expected 96`);
  const u64 = (off: number) => Number(buf.readBigUInt64LE(off));
  return {
    maxElements: u64(8),
    count: u64(16),
    bytesPerElement: u64(24),
    // offsetLevel0, maxElements, count, sizePerElement, labelOffset, offsetData (6×8), maxLevel, enterpoint (2×4),
    // maxM, maxM0, M
    M: u64(72),
  };
}

/**
 * The checks that stand between a bad file and a crashed process: hnswlib loads a file of another
 * dimension silently and aborts on a capacity below the count (KNOWN-TRAPS).
 */
export function checkHnswHeader(
  h: HnswHeader,
  dims: number,
  count: number,
  M: number,
  fileBytes: number,
): string[] {
  const problems: string[] = [];
  const per = hnswBytesPerElement(dims, M);
  // Fewer elements than items is a deduplicated segment (one element per distinct vector, GroupedIndex).
  if (h.count > count || (h.count === 0 && count > 0))
    problems.push(`holds ${h.count} elements, manifest says ${count}`);
  if (h.maxElements < h.count) problems.push(`capacity ${h.maxElements} is below its count ${h.count}`);
  if (h.bytesPerElement !== per)
    problems.push(`${h.bytesPerElement} bytes per element, expected ${per} (dims ${dims}, M ${M})`);
  if (h.M !== M) problems.push(`M is ${h.M}, manifest says ${M}`);
  if (fileBytes < HNSW_HEADER_BYTES + h.count * per) problems.push(`file of ${fileBytes} bytes is too short`);
  return problems;
}

class HnswVectorIndex implements VectorIndex {
  private ef = -1;
  private released = false;
  constructor(
    private readonly index: Hnsw.HierarchicalNSW,
    readonly dims: number,
    readonly count: number,
  ) {}

  /**
   * hnswlib-node has no free(): its index is deleted only when GC finalises the wrapper, and the addon
   * never tells V8 about the native bytes, so GC feels no pressure to. `initIndex(1)` deletes the
   * loaded index at once (leaving a 1-element one, ~2.6 MB of mutexes, until GC takes the wrapper).
   */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.index.initIndex(1);
  }

  private live(): void {
    if (this.released) throw new Error('this index was evicted from memory; load the collection again');
  }

  search(query: number[], k: number, ef: number, filter?: (label: number) => boolean): SearchHit[] {
    this.live();
    const kk = Math.min(k, this.count);
    if (kk <= 0) return [];
    const e = Math.max(ef, kk);
    if (e !== this.ef) {
      this.index.setEf(e);
      this.ef = e;
    }
    const r = this.index.searchKnn(query, kk, filter);
    const out: SearchHit[] = new Array(r.neighbors.length);
    for (let i = 0; i < r.neighbors.length; i++) {
      out[i] = { label: r.neighbors[i] as number, distance: r.distances[i] as number };
    }
    return out;
  }

  getVector(label: number): number[] {
    this.live();
    return this.index.getPoint(label);
  }
}

class HnswBuilder implements IndexBuilder {
  private added = 0;
  constructor(
    private readonly index: Hnsw.HierarchicalNSW,
    private readonly dims: number,
  ) {}
  add(vector: number[], label: number): void {
    this.index.addPoint(vector, label);
    this.added++;
  }
  async write(path: string): Promise<void> {
    await this.index.writeIndex(path);
  }
  search(query: number[], k: number, ef: number): SearchHit[] {
    return new HnswVectorIndex(this.index, this.dims, this.added).search(query, k, ef);
  }
}

export const hnswEngine: IndexEngine = {
  create(metric, dims, capacity, M, efConstruction, seed = 100) {
    const index = new hnswlib.HierarchicalNSW(metric as Hnsw.SpaceName, dims);
    index.initIndex({ maxElements: Math.max(1, capacity), m: M, efConstruction, randomSeed: seed });
    return new HnswBuilder(index, dims);
  },

  async load(path, metric: Metric, dims, count, M, ef) {
    const fh = await open(path, 'r');
    let header: HnswHeader;
    let size: number;
    try {
      const buf = Buffer.alloc(HNSW_HEADER_BYTES);
      await fh.read(buf, 0, HNSW_HEADER_BYTES, 0);
      size = (await fh.stat()).size;
      header = parseHnswHeader(buf);
    } finally {
      await fh.close();
    }
    const problems = checkHnswHeader(header, dims, count, M, size);
    if (problems.length) throw new Error(`index file ${path} ${problems.join('; ')}`);
    // Always a fresh object: a failed readIndex frees the index its object held (KNOWN-TRAPS).
    const index = new hnswlib.HierarchicalNSW(metric as Hnsw.SpaceName, dims);
    await index.readIndex(path);
    index.setEf(ef); // readIndex resets ef to 10
    if (header.count === count) return new HnswVectorIndex(index, dims, count);
    return new GroupedIndex(new HnswVectorIndex(index, dims, header.count), count, index.getIdsList());
  },
};

/**
 * Every vector of an hnswlib index file, by label, as one Float32Array — read straight from the
 * level-0 block of the (already verified) file in /tmp. Exact search over a few thousand allowed
 * items needs the vectors as a flat array: hnswlib-node's getPoint costs ~8 µs a call, a scan of a
 * Float32Array ~0.1 µs per 64-d vector. Cosine indexes hold unit vectors, as hnswlib normalised them.
 */
export async function readIndexVectors(path: string, dims: number, count: number): Promise<Float32Array> {
  const fh = await open(path, 'r');
  try {
    const head = Buffer.alloc(HNSW_HEADER_BYTES);
    await fh.read(head, 0, HNSW_HEADER_BYTES, 0);
    const u64 = (off: number) => Number(head.readBigUInt64LE(off));
    const stored = u64(16);
    const per = u64(24);
    const labelOffset = u64(32);
    const dataOffset = u64(40);
    if (stored > count || per % 4 !== 0 || dataOffset + 4 * dims > per) {
      throw new Error(`index file ${path} does not have the layout its manifest describes`);
    }
    const out = new Float32Array(count * dims);
    // A deduplicated segment stores one element per group; the other members take their group's vector.
    const present = stored < count ? new Uint8Array(count) : undefined;
    const perChunk = Math.max(1, Math.floor((8 << 20) / per));
    // Its own ArrayBuffer at offset 0, so element starts (multiples of `per`) stay 4-byte aligned.
    const buf = Buffer.from(new ArrayBuffer(perChunk * per));
    const floats = new Float32Array(buf.buffer);
    for (let first = 0; first < stored; first += perChunk) {
      const n = Math.min(perChunk, stored - first);
      const { bytesRead } = await fh.read(buf, 0, n * per, HNSW_HEADER_BYTES + first * per);
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
        if (present) present[label] = 1;
      }
    }
    if (present) {
      // Members follow their representative (GroupedIndex): each copies the label before it.
      if (count > 0 && !present[0]) throw new Error(`index file ${path} does not hold label 0`);
      for (let label = 1; label < count; label++)
        if (!present[label]) out.copyWithin(label * dims, (label - 1) * dims, label * dims);
    }
    return out;
  } finally {
    await fh.close();
  }
}
