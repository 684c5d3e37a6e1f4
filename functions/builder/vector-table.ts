import type { Row } from '../adapters/readers/types';

/** The rows of one collection held compactly: ids, row-major float32 vectors, metadata. */
export class VectorTable {
  readonly ids: string[] = [];
  readonly metadata: (Record<string, unknown> | null)[] = [];
  readonly metadataFields = new Set<string>();
  /** In shared memory so index and quality workers read it without a copy. */
  private data: Float32Array;
  private shared: SharedArrayBuffer;
  private rows = 0;
  hasMetadata = false;

  constructor(
    readonly dims: number,
    /** Cosine rows are stored unit-length: hnswlib normalises anyway, and exact search then is 1 − dot. */
    readonly normalise = false,
    initialRows = 1024,
  ) {
    this.shared = new SharedArrayBuffer(dims * initialRows * 4);
    this.data = new Float32Array(this.shared);
  }

  get buffer(): SharedArrayBuffer {
    return this.shared;
  }

  get count(): number {
    return this.rows;
  }

  push(row: Row): void {
    if ((this.rows + 1) * this.dims > this.data.length) {
      const shared = new SharedArrayBuffer(Math.max(this.data.length * 2, (this.rows + 1) * this.dims) * 4);
      const grown = new Float32Array(shared);
      grown.set(this.data);
      this.shared = shared;
      this.data = grown;
    }
    const off = this.rows * this.dims;
    this.data.set(row.vector, off);
    if (this.normalise) {
      let s = 0;
      for (let i = 0; i < this.dims; i++) s += (this.data[off + i] as number) ** 2;
      const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
      for (let i = 0; i < this.dims; i++) this.data[off + i] = (this.data[off + i] as number) * inv;
    }
    this.ids.push(row.id);
    this.metadata.push(row.metadata);
    if (row.metadata) {
      this.hasMetadata = true;
      for (const k of Object.keys(row.metadata)) this.metadataFields.add(k);
    }
    this.rows++;
  }

  /** The vectors as one row-major array (a view, not a copy). */
  vectors(): Float32Array {
    return this.data.subarray(0, this.rows * this.dims);
  }

  vector(row: number): number[] {
    return Array.from(this.data.subarray(row * this.dims, (row + 1) * this.dims));
  }
}
