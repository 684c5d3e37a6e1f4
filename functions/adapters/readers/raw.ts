/**
 * Raw input: little-endian float32 rows (numpy `tofile`) plus one id per line (UTF-8, LF, CRLF
 * tolerated, optional trailing newline). Both files stream in lockstep: memory holds one chunk of
 * each, never the file. A partition task reads a range of rows (`part.rows`): a byte range of each
 * file, its rows numbered as in the file.
 */
import { endianness } from 'node:os';
import type { Readable } from 'node:stream';
import {
  asBuffer,
  finiteProblem,
  idProblem,
  type Line,
  LineSplitter,
  report,
  ShapeChecker,
  tooLongMessage,
} from './rows';
import type { CollectionReader, Row } from './types';

const LITTLE_ENDIAN_HOST = endianness() === 'LE';
const decoder = new TextDecoder('utf-8', { fatal: true });

/** Whole rows of `dims` float32 values, one batch per stream chunk. */
async function* vectorBatches(stream: Readable, dims: number): AsyncGenerator<Float32Array[]> {
  const rowBytes = dims * 4;
  let carry: Buffer = Buffer.alloc(0);
  for await (const chunk of stream) {
    let bytes = asBuffer(chunk);
    if (carry.length > 0) bytes = Buffer.concat([carry, bytes]);
    const rows = Math.floor(bytes.length / rowBytes);
    const batch: Float32Array[] = new Array(rows);
    if (rows > 0) {
      // One aligned copy of the whole rows, then one small copy per row (rows must not share memory).
      const aligned = new Uint8Array(rows * rowBytes);
      aligned.set(bytes.subarray(0, rows * rowBytes));
      if (LITTLE_ENDIAN_HOST) {
        const block = new Float32Array(aligned.buffer);
        for (let r = 0; r < rows; r++) batch[r] = block.slice(r * dims, (r + 1) * dims);
      } else {
        const view = new DataView(aligned.buffer);
        for (let r = 0; r < rows; r++) {
          const v = new Float32Array(dims);
          for (let j = 0; j < dims; j++) v[j] = view.getFloat32((r * dims + j) * 4, true);
          batch[r] = v;
        }
      }
      yield batch;
    }
    carry = Buffer.from(bytes.subarray(rows * rowBytes));
  }
  if (carry.length > 0) throw new Error(`vectors stream ended inside a row (${carry.length} stray bytes)`);
}

/** Lines of the ids file, one batch per stream chunk (copied: the chunk is released after). */
async function* lineBatches(stream: Readable, maxLineBytes: number): AsyncGenerator<Line[]> {
  const splitter = new LineSplitter(maxLineBytes);
  for await (const chunk of stream) {
    const batch: Line[] = [];
    for (const line of splitter.push(asBuffer(chunk))) {
      batch.push(line.bytes ? { ...line, bytes: Buffer.from(line.bytes) } : line);
    }
    if (batch.length) yield batch;
  }
  const last = [...splitter.end()];
  if (last.length) yield last;
}

/** Pulls single items out of an async iterator of batches. */
class Queue<T> {
  private batch: T[] = [];
  private at = 0;
  constructor(private readonly it: AsyncIterator<T[]>) {}
  /** The next item, or undefined at the end. */
  async next(): Promise<T | undefined> {
    while (this.at >= this.batch.length) {
      const r = await this.it.next();
      if (r.done) return undefined;
      this.batch = r.value;
      this.at = 0;
    }
    return this.batch[this.at++];
  }
  /** Items already buffered but not taken. */
  get buffered(): number {
    return this.batch.length - this.at;
  }
  async drain(): Promise<number> {
    let n = this.buffered;
    this.at = this.batch.length;
    for (let r = await this.it.next(); !r.done; r = await this.it.next()) n += r.value.length;
    return n;
  }
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

/** Reads `spec.files = [vectors, ids]` with `spec.dims` required. */
export const readRaw: CollectionReader = async function* ({ spec, files, problems, maxLineBytes, part }) {
  const [vectorsFile, idsFile] = spec.files;
  if (vectorsFile === undefined || idsFile === undefined) {
    report(
      problems,
      vectorsFile ?? 'release.json',
      undefined,
      'raw input needs a vectors file and an ids file',
    );
    return;
  }
  const dims = spec.dims;
  if (dims === undefined) {
    report(problems, vectorsFile, undefined, 'raw input needs "dims" in release.json');
    return;
  }
  const [vectorsSize, idsSize] = await Promise.all([files.size(vectorsFile), files.size(idsFile)]);
  if (vectorsSize === undefined) report(problems, vectorsFile, undefined, 'file not found');
  if (idsSize === undefined) report(problems, idsFile, undefined, 'file not found');
  if (vectorsSize === undefined || idsSize === undefined) return;
  const rowBytes = dims * 4;
  if (vectorsSize % rowBytes !== 0) {
    report(
      problems,
      vectorsFile,
      undefined,
      `${vectorsFile} is ${vectorsSize} bytes, not a multiple of ${rowBytes} (${dims} dims × 4)`,
    );
    return;
  }
  const range = part?.rows;
  // Rows before this part (its rows keep their numbers in the file), and how many it holds.
  const before = range?.from ?? 0;
  const rowCount = range ? range.to - range.from : vectorsSize / rowBytes;
  const shape = new ShapeChecker(spec);
  const [vectorStream, idStream] = await Promise.all([
    files.stream(
      vectorsFile,
      range ? { offset: range.from * rowBytes, bytes: rowCount * rowBytes } : undefined,
    ),
    files.stream(
      idsFile,
      range ? { offset: range.idsStart, bytes: range.idsEnd - range.idsStart } : undefined,
    ),
  ]);
  const vectors = new Queue(vectorBatches(vectorStream, dims));
  const ids = new Queue(lineBatches(idStream, maxLineBytes));
  try {
    let vectorsSeen = 0;
    let idsSeen = 0;
    for (;;) {
      const vector = await vectors.next();
      if (vector === undefined) break;
      vectorsSeen++;
      const idLine = await ids.next();
      if (idLine === undefined) break;
      idsSeen++;
      const row = before + vectorsSeen;
      const line = before + idLine.line;
      let id: string | undefined;
      if (idLine.bytes === null) {
        report(problems, idsFile, line, tooLongMessage(idLine.length, maxLineBytes));
      } else {
        let text: string | undefined;
        try {
          text = decoder.decode(idLine.bytes);
        } catch {
          report(problems, idsFile, line, 'invalid UTF-8');
        }
        if (text !== undefined) {
          const bad = idProblem(text, true);
          if (bad) report(problems, idsFile, line, bad);
          else id = text;
        }
      }
      const badValue = finiteProblem(vector) ?? shape.check(vector, vectorsFile, row, 'row');
      if (badValue) {
        report(problems, vectorsFile, row, badValue);
        continue;
      }
      if (id === undefined) continue;
      const out: Row = { id, vector, metadata: null, file: idsFile, line: row };
      yield out;
    }
    // Count what is left on either side so a mismatch reports both totals.
    const vectorRows = vectorsSeen + (await vectors.drain());
    const idCount = idsSeen + (await ids.drain());
    if (vectorRows !== rowCount)
      throw new Error(`${vectorsFile} changed while reading (${vectorRows} ≠ ${rowCount} rows)`);
    if (range && idCount !== rowCount) {
      // The planner counted these lines (reading the ETag every task reads): the file changed since.
      throw new Error(
        `${idsFile} changed while reading (bytes ${range.idsStart}–${range.idsEnd}: ${idCount} ids ≠ ${rowCount} rows)`,
      );
    }
    if (idCount !== rowCount) {
      report(
        problems,
        idsFile,
        undefined,
        `${idsFile} has ${idCount} ids but ${vectorsFile} has ${rowCount} rows (${dims} dims); they must match one to one`,
      );
    }
  } finally {
    await Promise.allSettled([vectors.close(), ids.close()]);
    vectorStream.destroy();
    idStream.destroy();
  }
};
