import type { Row } from '../adapters/readers/types';

/** The rows of one collection held compactly: ids, row-major float32 vectors, metadata. */
export class VectorTable {
  readonly ids: string[] = [];
  readonly metadata: (Record<string, unknown> | null)[] = [];
  readonly metadataFields = new Set<string>();
  private data: Float32Array;
  private rows = 0;
  hasMetadata = false;

  constructor(
    readonly dims: number,
    initialRows = 1024,
  ) {
    this.data = new Float32Array(dims * initialRows);
  }

  get count(): number {
    return this.rows;
  }

  push(row: Row): void {
    if ((this.rows + 1) * this.dims > this.data.length) {
      const grown = new Float32Array(Math.max(this.data.length * 2, (this.rows + 1) * this.dims));
      grown.set(this.data);
      this.data = grown;
    }
    this.data.set(row.vector, this.rows * this.dims);
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
