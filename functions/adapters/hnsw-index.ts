import { open } from 'node:fs/promises';
import { createRequire } from 'node:module';
import type * as Hnsw from 'hnswlib-node';
import { hnswBytesPerElement } from '../core/manifest';
import type { IndexBuilder, IndexEngine, SearchHit, VectorIndex } from '../core/ports';
import type { Metric } from '../core/release';

// createRequire so Lambda's NODE_PATH (/opt/nodejs/node_modules, the layer) resolves the native addon;
// ESM `import` ignores NODE_PATH.
const hnswlib = createRequire(import.meta.url)('hnswlib-node') as typeof Hnsw;

export const HNSW_HEADER_BYTES = 96;

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
  if (h.count !== count) problems.push(`holds ${h.count} elements, manifest says ${count}`);
  if (h.maxElements < h.count) problems.push(`capacity ${h.maxElements} is below its count ${h.count}`);
  if (h.bytesPerElement !== per)
    problems.push(`${h.bytesPerElement} bytes per element, expected ${per} (dims ${dims}, M ${M})`);
  if (h.M !== M) problems.push(`M is ${h.M}, manifest says ${M}`);
  if (fileBytes < HNSW_HEADER_BYTES + h.count * per) problems.push(`file of ${fileBytes} bytes is too short`);
  return problems;
}

class HnswVectorIndex implements VectorIndex {
  private ef = -1;
  constructor(
    private readonly index: Hnsw.HierarchicalNSW,
    readonly dims: number,
    readonly count: number,
  ) {}

  search(query: number[], k: number, ef: number, filter?: (label: number) => boolean): SearchHit[] {
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
    return new HnswVectorIndex(index, dims, count);
  },
};
