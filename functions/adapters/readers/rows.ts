/**
 * Shared pieces of the input readers: per-row validation (id, vector, metadata, dims, cosine) and a
 * byte-level line splitter that never holds more than one line (bounded by maxLineBytes).
 */
import type { ReleaseProblem } from '../../core/errors';
import { itemIdProblem } from '../../core/names';
import type { CollectionSpec } from '../../core/release';
import type { ProblemCollector, ReleaseFiles } from './types';

/** Spark and Hadoop write these next to the data parts; they are never data. */
export function isSideFile(file: string): boolean {
  return /(^|\/)_SUCCESS$/.test(file) || file.endsWith('.crc');
}

/** A short description of a value's type for messages: "array", "null", "string", … */
export function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const t = typeof value;
  return t === 'object' ? 'an object' : `a ${t}`;
}

function describeElement(value: unknown): string {
  if (value === null) return 'null, not a number';
  if (value === undefined) return 'missing';
  if (typeof value === 'number') return String(value); // NaN, Infinity, -Infinity
  if (typeof value === 'string') {
    const shown = value.length > 20 ? `${value.slice(0, 20)}…` : value;
    return `the string ${JSON.stringify(shown)}, not a number`;
  }
  return `${describe(value)}, not a number`;
}

/** The largest finite float32; beyond it (after rounding) a value becomes Infinity. */
const FLOAT32_MAX = 3.4028234663852886e38;

/**
 * Converts a decoded vector (JSON array, Parquet list, typed array) to a Float32Array, or says
 * what is wrong with it. Values that are finite doubles but overflow float32 are refused too.
 */
export function toVector(value: unknown): Float32Array | string {
  if (value === undefined) return 'vector is missing';
  if (value === null) return 'vector is null';
  if (Array.isArray(value)) {
    const n = value.length;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const v: unknown = value[i];
      if (typeof v !== 'number' || !Number.isFinite(v)) return `vector[${i}] is ${describeElement(v)}`;
      out[i] = v;
      if ((v > FLOAT32_MAX || v < -FLOAT32_MAX) && !Number.isFinite(out[i])) {
        return `vector[${i}] is ${v}, outside the float32 range`;
      }
    }
    return out;
  }
  if (ArrayBuffer.isView(value) && !(value instanceof DataView)) {
    const arr = value as unknown as ArrayLike<number | bigint>;
    const n = arr.length;
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      const raw = arr[i] as number | bigint;
      const v = typeof raw === 'bigint' ? Number(raw) : raw;
      if (!Number.isFinite(v)) return `vector[${i}] is ${describeElement(v)}`;
      out[i] = v;
      if (!Number.isFinite(out[i])) return `vector[${i}] is ${v}, outside the float32 range`;
    }
    return out;
  }
  return `vector must be an array of numbers, got ${describe(value)}`;
}

/** Checks a Float32Array read as raw bytes: every value finite. */
export function finiteProblem(vector: Float32Array): string | undefined {
  for (let i = 0; i < vector.length; i++) {
    const v = vector[i] as number;
    if (!Number.isFinite(v)) return `vector[${i}] is ${v}`;
  }
  return undefined;
}

/**
 * Tracks the collection's dims (from the spec, or fixed by the first valid row) and checks each
 * vector's length and, under cosine, that it has a direction.
 */
export class ShapeChecker {
  dims: number | undefined;
  private setBy: { file: string; line: number } | undefined;
  private readonly cosine: boolean;

  constructor(spec: CollectionSpec) {
    this.dims = spec.dims;
    this.cosine = spec.metric === 'cosine';
  }

  /** Problem with the vector's shape, or undefined; on success, fixes dims if not yet known. */
  check(vector: Float32Array, file: string, line: number, unit: 'line' | 'row'): string | undefined {
    const n = vector.length;
    if (n === 0) return 'vector is empty';
    if (this.dims !== undefined && n !== this.dims) {
      return `vector has ${n} values, expected ${this.dims} (${this.source(file, unit)})`;
    }
    if (this.cosine) {
      let nonZero = false;
      for (let i = 0; i < n; i++) {
        if (vector[i] !== 0) {
          nonZero = true;
          break;
        }
      }
      if (!nonZero) return 'zero vector has no direction under cosine';
    }
    if (this.dims === undefined) {
      this.dims = n;
      this.setBy = { file, line };
    }
    return undefined;
  }

  private source(file: string, unit: 'line' | 'row'): string {
    if (!this.setBy) return 'set by "dims" in release.json';
    if (this.setBy.file === file) return `set by ${unit} ${this.setBy.line}`;
    return `set by ${this.setBy.file} ${unit} ${this.setBy.line}`;
  }
}

/** Validates an id that must already be a string (JSONL, raw). */
export function idProblem(id: unknown, present: boolean): string | undefined {
  if (!present) return 'id is missing';
  if (typeof id === 'number') return `id must be a string, got the number ${id}`;
  if (typeof id !== 'string') return `id must be a string, got ${describe(id)}`;
  return itemIdProblem(id);
}

/** Records a problem and returns nothing, so call sites can `continue` after it. */
export function report(
  problems: ProblemCollector,
  file: string,
  line: number | undefined,
  message: string,
): void {
  const problem: ReleaseProblem = line === undefined ? { file, message } : { file, line, message };
  problems.add(problem);
}

/** The file's size, or a "not found" problem (and undefined). */
export async function sizeOrProblem(
  files: ReleaseFiles,
  file: string,
  problems: ProblemCollector,
): Promise<number | undefined> {
  const size = await files.size(file);
  if (size === undefined) report(problems, file, undefined, 'file not found');
  return size;
}

/** One line of input: the bytes without the newline (and without a trailing CR), or null when over-long. */
export interface Line {
  /** 1-based line number within the file. */
  line: number;
  /** The line's bytes (a view into the chunk: use before the next chunk), or null if it was too long. */
  bytes: Buffer | null;
  /** Length in bytes (for over-long lines, the full length that was skipped). */
  length: number;
  /** Offset of the line's first byte in the stream (byte-range partitions decide which lines are theirs by it). */
  offset: number;
}

const EMPTY = Buffer.alloc(0);

/**
 * Splits a byte stream into lines on LF without decoding. Holds at most one line
 * (maxLineBytes + 1); an over-long line is skipped to its newline and reported as `bytes: null`.
 */
export class LineSplitter {
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private skipping = false;
  private skipped = 0;
  private lineNo = 0;
  /** Bytes pushed before the current chunk, and where the line being assembled starts. */
  private base = 0;
  private lineStart = 0;

  constructor(private readonly maxLineBytes: number) {}

  /** Lines completed by this chunk. Views into the chunk: consume them before pushing the next. */
  *push(chunk: Buffer): Generator<Line> {
    const n = chunk.length;
    let start = 0;
    const base = this.base;
    this.base += n;
    while (start < n) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) {
        this.hold(chunk, start, n);
        return;
      }
      const line = this.complete(chunk, start, nl);
      this.lineStart = base + nl + 1;
      yield line;
      start = nl + 1;
    }
  }

  /** The last line when the input does not end with a newline. */
  *end(): Generator<Line> {
    if (this.skipping || this.partsBytes > 0) yield this.complete(EMPTY, 0, 0);
  }

  /** Lines seen so far. */
  get lines(): number {
    return this.lineNo;
  }

  private hold(chunk: Buffer, start: number, end: number): void {
    if (this.skipping) {
      this.skipped += end - start;
      return;
    }
    this.parts.push(chunk.subarray(start, end));
    this.partsBytes += end - start;
    // +1: a CR before the LF does not count towards the limit.
    if (this.partsBytes > this.maxLineBytes + 1) {
      this.skipping = true;
      this.skipped = this.partsBytes;
      this.parts = [];
      this.partsBytes = 0;
    }
  }

  private complete(chunk: Buffer, start: number, end: number): Line {
    const line = ++this.lineNo;
    const offset = this.lineStart;
    if (this.skipping) {
      const length = this.skipped + end - start;
      this.skipping = false;
      this.skipped = 0;
      return { line, bytes: null, length, offset };
    }
    let bytes: Buffer;
    if (this.partsBytes === 0) {
      bytes = chunk.subarray(start, end);
    } else {
      this.parts.push(chunk.subarray(start, end));
      bytes = Buffer.concat(this.parts, this.partsBytes + end - start);
      this.parts = [];
      this.partsBytes = 0;
    }
    if (bytes.length > 0 && bytes[bytes.length - 1] === 13) bytes = bytes.subarray(0, bytes.length - 1);
    if (bytes.length > this.maxLineBytes) return { line, bytes: null, length: bytes.length, offset };
    return { line, bytes, length: bytes.length, offset };
  }
}

/** A chunk from a Readable as a Buffer (streams in object or string mode are tolerated). */
export function asBuffer(chunk: unknown): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  throw new TypeError(`unexpected stream chunk of type ${typeof chunk}`);
}

export function tooLongMessage(length: number, max: number): string {
  return `line is ${length} bytes, longer than the limit of ${max} bytes; skipped`;
}
