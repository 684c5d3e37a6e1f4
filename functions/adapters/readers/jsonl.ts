/**
 * JSONL and gzipped JSONL: `{"id": "...", "vector": [...], "metadata": {...}}` per line.
 * Streams byte chunks, splits on LF bytes, decodes each line strictly as UTF-8 and parses it with
 * JSON.parse; memory holds one chunk and at most one line, never the file.
 */
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import {
  asBuffer,
  describe,
  idProblem,
  isSideFile,
  type Line,
  LineSplitter,
  report,
  ShapeChecker,
  sizeOrProblem,
  tooLongMessage,
  toVector,
} from './rows';
import type { CollectionReader, ReaderOptions, Row } from './types';

const GZIP_MAGIC_0 = 0x1f;
const GZIP_MAGIC_1 = 0x8b;

function isBlank(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i];
    if (b !== 0x20 && b !== 0x09 && b !== 0x0d && b !== 0x0a) return false;
  }
  return true;
}

function isZlibError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('Z_');
}

/**
 * Whether the file is gzip, by its first two bytes (JSON text never starts with 0x1f): the bytes
 * decide, not the name or the collection's format, so plain and gzipped parts may be mixed.
 */
async function isGzip(options: ReaderOptions, file: string, size: number): Promise<boolean> {
  if (size < 2) return false;
  const head = await options.files.range(file, 0, 2);
  return head[0] === GZIP_MAGIC_0 && head[1] === GZIP_MAGIC_1;
}

async function* readFile(options: ReaderOptions, file: string, shape: ShapeChecker): AsyncGenerator<Row> {
  const { files, problems, maxLineBytes } = options;
  const size = await sizeOrProblem(files, file, problems);
  if (size === undefined) return;
  const gzip = await isGzip(options, file, size);
  const part = options.part?.bytes;
  if (part && gzip) throw new Error(`${file} is gzip: it cannot be read by byte range`);
  // A part after the first starts one byte early: the line in progress there (up to and including the
  // first newline at or after start − 1) belongs to the part before.
  const later = !!part && part.start > 0;
  const from = later && part ? part.start - 1 : 0;
  const stop = part ? part.end : Number.POSITIVE_INFINITY;
  const source = await files.stream(file, later ? { offset: from, bytes: size - from } : undefined);
  let sourceError: unknown;
  let input: Readable = source;
  if (gzip) {
    const gunzip = createGunzip({ chunkSize: 1 << 18 });
    source.on('error', (err) => {
      sourceError = err;
      gunzip.destroy(err);
    });
    source.pipe(gunzip);
    input = gunzip;
  } else {
    source.on('error', (err) => {
      sourceError = err;
    });
  }

  const decoder = new TextDecoder('utf-8', { fatal: true });
  const splitter = new LineSplitter(maxLineBytes);
  const self = { file, shape, problems, decoder };
  const skip = later ? 1 : 0;
  let done = false;
  /** Whether the line is this part's (counted), and past its end (stop reading). */
  const mine = (l: Line): boolean => {
    if (l.line <= skip) return false;
    if (from + l.offset >= stop) {
      done = true;
      return false;
    }
    return true;
  };
  const finish = () => {
    if (options.part) options.part.lines = Math.max(0, splitter.lines - skip - (done ? 1 : 0));
  };
  try {
    try {
      for await (const chunk of input) {
        for (const line of splitter.push(asBuffer(chunk))) {
          if (!mine(line)) {
            if (done) break;
            continue;
          }
          const row = parseLine(self, line.line - skip, line.bytes, line.length, maxLineBytes);
          if (row) yield row;
        }
        if (done) {
          finish();
          return;
        }
      }
    } catch (err) {
      if (sourceError !== undefined || !isZlibError(err)) throw sourceError ?? err;
      report(
        problems,
        file,
        splitter.lines + 1,
        `not valid gzip: ${(err as Error).message} (after ${splitter.lines} complete lines)`,
      );
      return;
    }
    for (const line of splitter.end()) {
      if (!mine(line)) continue;
      const row = parseLine(self, line.line - skip, line.bytes, line.length, maxLineBytes);
      if (row) yield row;
    }
    finish();
  } finally {
    source.destroy();
    if (input !== source) input.destroy();
  }
}

interface FileState {
  file: string;
  shape: ShapeChecker;
  problems: ReaderOptions['problems'];
  decoder: { decode(input: Uint8Array): string };
}

function parseLine(
  s: FileState,
  line: number,
  bytes: Buffer | null,
  length: number,
  maxLineBytes: number,
): Row | undefined {
  const { file, problems } = s;
  if (bytes === null) {
    report(problems, file, line, tooLongMessage(length, maxLineBytes));
    return undefined;
  }
  // Fast path: rows start with '{'; anything else may be a blank line.
  if (bytes[0] !== 0x7b && isBlank(bytes)) return undefined;
  let text: string;
  try {
    text = s.decoder.decode(bytes);
  } catch {
    report(problems, file, line, 'invalid UTF-8');
    return undefined;
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    report(problems, file, line, `not valid JSON: ${(err as Error).message}`);
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    report(problems, file, line, `row must be a JSON object, got ${describe(value)}`);
    return undefined;
  }
  const obj = value as { id?: unknown; vector?: unknown; metadata?: unknown };
  const id = obj.id;
  const badId = idProblem(id, id !== undefined);
  if (badId) {
    report(problems, file, line, badId);
    return undefined;
  }
  const vector = toVector(obj.vector);
  if (typeof vector === 'string') {
    report(problems, file, line, vector);
    return undefined;
  }
  const metadata = obj.metadata;
  if (
    metadata !== undefined &&
    metadata !== null &&
    (typeof metadata !== 'object' || Array.isArray(metadata))
  ) {
    report(problems, file, line, `metadata must be an object or null, got ${describe(metadata)}`);
    return undefined;
  }
  const badShape = s.shape.check(vector, file, line, 'line');
  if (badShape) {
    report(problems, file, line, badShape);
    return undefined;
  }
  return {
    id: id as string,
    vector,
    metadata: (metadata as Record<string, unknown> | undefined) ?? null,
    file,
    line,
  };
}

/** Reads `.jsonl` and `.jsonl.gz` files in spec order (gzip recognised by its magic bytes). */
export const readJsonl: CollectionReader = async function* (options) {
  const shape = new ShapeChecker(options.spec);
  for (const file of options.spec.files) {
    if (isSideFile(file)) continue;
    yield* readFile(options, file, shape);
  }
};
