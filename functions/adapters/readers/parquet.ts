/**
 * Parquet input via hyparquet over ranged reads (`files.range`), so nothing reads the whole file:
 * the footer first, then one row group (or one slice of a large row group, when offset indexes
 * allow) at a time. Id column: string or integer (→ decimal string). Vector column: a list of
 * numbers (LIST of FLOAT/DOUBLE, fixed-size list, legacy repeated field). Other scalar columns
 * become metadata; nested columns other than the vector are not read.
 */
import {
  type AsyncBuffer,
  type FileMetaData,
  parquetMetadataAsync,
  parquetRead,
  parquetSchema,
  type SchemaTree,
} from 'hyparquet';
import { compressors } from 'hyparquet-compressors';
import { itemIdProblem } from '../../core/names';
import { describe, isSideFile, report, ShapeChecker, sizeOrProblem, toVector } from './rows';
import type { CollectionReader, ReaderOptions, Row } from './types';

/** Rows per read when a row group is larger and every column chunk has an offset index. */
const SLICE_ROWS = 65_536;

/** An error from the storage layer, not from the file's contents: it propagates, it is no problem row. */
export class StorageError extends Error {}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  if (
    bytes.byteOffset === 0 &&
    bytes.byteLength === bytes.buffer.byteLength &&
    bytes.buffer instanceof ArrayBuffer
  ) {
    return bytes.buffer;
  }
  return bytes.slice().buffer as ArrayBuffer;
}

function rangedBuffer(options: ReaderOptions, file: string, size: number): AsyncBuffer {
  return {
    byteLength: size,
    async slice(start: number, end?: number): Promise<ArrayBuffer> {
      const stop = Math.min(end ?? size, size);
      if (stop <= start) return new ArrayBuffer(0);
      try {
        return toArrayBuffer(await options.files.range(file, start, stop - start));
      } catch (err) {
        throw new StorageError(`reading ${file} bytes ${start}-${stop}: ${(err as Error).message}`, {
          cause: err,
        });
      }
    },
  };
}

/** Id value → string id, or a problem. Integers (number or bigint) become decimal strings. */
function idFrom(value: unknown): string | { problem: string } {
  let id: string;
  if (typeof value === 'string') id = value;
  else if (typeof value === 'bigint') id = value.toString();
  else if (typeof value === 'number' && Number.isInteger(value)) id = String(value);
  else if (value === null || value === undefined) return { problem: 'id is missing (null)' };
  else if (typeof value === 'number') return { problem: `id must be a string or an integer, got ${value}` };
  else return { problem: `id must be a string or an integer, got ${describe(value)}` };
  const problem = itemIdProblem(id);
  return problem ? { problem } : id;
}

/** A scalar Parquet value as a JSON-safe metadata value; undefined means "leave the field out". */
function metadataValue(value: unknown): unknown {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER)
        ? Number(value)
        : value.toString();
    case 'undefined':
      return null;
    default:
      if (value === null) return null;
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
      return undefined;
  }
}

function isLeaf(node: SchemaTree): boolean {
  return node.children.length === 0;
}

const NUMERIC = new Set(['FLOAT', 'DOUBLE', 'INT32', 'INT64']);

/** Why a column is not a list of numbers (LIST / fixed-size list / legacy repeated field), or undefined. */
function listOfNumbersProblem(node: SchemaTree): string | undefined {
  const el = node.element;
  if (isLeaf(node)) {
    if (el.repetition_type !== 'REPEATED') return `a ${el.type ?? 'scalar'} column`;
    return NUMERIC.has(el.type ?? '') ? undefined : `a repeated ${el.type} column`;
  }
  const isList =
    el.converted_type === 'LIST' ||
    el.logical_type?.type === 'LIST' ||
    node.children.some((c) => c.element.repetition_type === 'REPEATED');
  if (!isList) return 'a group (struct or map) column';
  let leaf = node;
  while (leaf.children.length === 1 && leaf.children[0]) leaf = leaf.children[0];
  if (!isLeaf(leaf)) return 'a list of groups';
  if (!NUMERIC.has(leaf.element.type ?? '')) return `a list of ${leaf.element.type} values`;
  return undefined;
}

interface Columns {
  id: string;
  vector: string;
  metadata: string[];
}

/** The columns to read, or a problem naming what is missing and what exists. */
function chooseColumns(options: ReaderOptions, metadata: FileMetaData): Columns | string {
  const { idColumn, vectorColumn } = options.spec;
  const top = parquetSchema(metadata).children;
  const names = top.map((c) => c.element.name);
  const byName = new Map(top.map((c) => [c.element.name, c]));
  const idNode = byName.get(idColumn);
  const vectorNode = byName.get(vectorColumn);
  const missing = [
    idNode ? undefined : `id column "${idColumn}"`,
    vectorNode ? undefined : `vector column "${vectorColumn}"`,
  ]
    .filter((m) => m !== undefined)
    .join(' and ');
  if (missing) return `no ${missing}; the columns are: ${names.join(', ') || '(none)'}`;
  if (!idNode || !vectorNode) return 'unreachable';
  if (!isLeaf(idNode) || idNode.element.repetition_type === 'REPEATED') {
    return `id column "${idColumn}" must hold strings or integers, but it is a nested or repeated column`;
  }
  const vectorProblem = listOfNumbersProblem(vectorNode);
  if (vectorProblem)
    return `vector column "${vectorColumn}" must be a list of numbers, but it is ${vectorProblem}`;
  const meta = top
    .filter((c) => isLeaf(c) && c.element.repetition_type !== 'REPEATED')
    .map((c) => c.element.name)
    .filter((n) => n !== idColumn && n !== vectorColumn);
  return { id: idColumn, vector: vectorColumn, metadata: meta };
}

/** [rowStart, rowEnd) slices, one per row group, or smaller where offset indexes let hyparquet read only the pages needed. */
function slices(
  metadata: FileMetaData,
  columns: Columns,
  groups?: { from: number; to: number },
): { start: number; end: number; sliced: boolean }[] {
  const wanted = new Set([columns.id, columns.vector, ...columns.metadata]);
  const out: { start: number; end: number; sliced: boolean }[] = [];
  let groupStart = 0;
  for (const [g, group] of metadata.row_groups.entries()) {
    const rows = Number(group.num_rows);
    if (groups && (g < groups.from || g >= groups.to)) {
      groupStart += rows;
      continue;
    }
    const indexed = group.columns.every((c) => {
      const name = c.meta_data?.path_in_schema[0];
      return (
        name === undefined ||
        !wanted.has(name) ||
        (c.offset_index_offset !== undefined && !!c.offset_index_length)
      );
    });
    if (rows > SLICE_ROWS && indexed) {
      for (let s = 0; s < rows; s += SLICE_ROWS) {
        out.push({ start: groupStart + s, end: groupStart + Math.min(rows, s + SLICE_ROWS), sliced: true });
      }
    } else if (rows > 0) {
      out.push({ start: groupStart, end: groupStart + rows, sliced: false });
    }
    groupStart += rows;
  }
  return out;
}

async function* readFile(options: ReaderOptions, file: string, shape: ShapeChecker): AsyncGenerator<Row> {
  const { files, problems } = options;
  const size = await sizeOrProblem(files, file, problems);
  if (size === undefined) return;
  const buffer = rangedBuffer(options, file, size);
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(buffer);
  } catch (err) {
    if (err instanceof StorageError) throw err;
    report(problems, file, undefined, `not a readable Parquet file: ${(err as Error).message}`);
    return;
  }
  let columns: Columns | string;
  try {
    columns = chooseColumns(options, metadata);
  } catch (err) {
    report(problems, file, undefined, `cannot read the Parquet schema: ${(err as Error).message}`);
    return;
  }
  if (typeof columns === 'string') {
    report(problems, file, undefined, columns);
    return;
  }
  const wanted = [columns.id, columns.vector, ...columns.metadata];
  const metaNames = columns.metadata;

  for (const slice of slices(metadata, columns, options.part?.rowGroups)) {
    let rows: unknown[][] = [];
    try {
      await parquetRead({
        file: buffer,
        metadata,
        columns: wanted,
        rowStart: slice.start,
        rowEnd: slice.end,
        compressors,
        useOffsetIndex: slice.sliced,
        onComplete: (r) => {
          rows = r;
        },
      });
    } catch (err) {
      if (err instanceof StorageError) throw err;
      report(
        problems,
        file,
        slice.start + 1,
        `cannot decode rows ${slice.start + 1}-${slice.end}: ${(err as Error).message}`,
      );
      continue;
    }
    for (let i = 0; i < rows.length; i++) {
      const values = rows[i] as unknown[];
      const line = slice.start + i + 1;
      const id = idFrom(values[0]);
      if (typeof id !== 'string') {
        report(problems, file, line, id.problem);
        continue;
      }
      const vector = toVector(values[1]);
      if (typeof vector === 'string') {
        report(problems, file, line, vector);
        continue;
      }
      const badShape = shape.check(vector, file, line, 'row');
      if (badShape) {
        report(problems, file, line, badShape);
        continue;
      }
      let metadataOut: Record<string, unknown> | null = null;
      if (metaNames.length > 0) {
        metadataOut = {};
        for (let m = 0; m < metaNames.length; m++) {
          const v = metadataValue(values[m + 2]);
          if (v !== undefined) metadataOut[metaNames[m] as string] = v;
        }
      }
      yield { id, vector, metadata: metadataOut, file, line };
    }
    rows = [];
  }
}

/** Reads `.parquet` parts in spec order; `_SUCCESS` and `.crc` side files are ignored. */
export const readParquet: CollectionReader = async function* (options) {
  const shape = new ShapeChecker(options.spec);
  for (const file of options.spec.files) {
    if (isSideFile(file)) continue;
    yield* readFile(options, file, shape);
  }
};
