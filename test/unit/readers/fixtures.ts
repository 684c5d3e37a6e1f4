/** Fixture writers and a read-everything helper for the reader tests (temp dirs, no network). */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parquetWriteFile } from 'hyparquet-writer';
import {
  localReleaseFiles,
  ProblemCollector,
  type Row,
  readerFor,
} from '../../../functions/adapters/readers';
import type { CollectionSpec, InputFormat } from '../../../functions/core/release';

/** The writer's schema element type (hyparquet-writer carries its own copy of hyparquet's types). */
type SchemaElement = NonNullable<Parameters<typeof parquetWriteFile>[0]['schema']>[number];

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), 'vicinity-readers-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export function spec(
  format: InputFormat,
  files: string[],
  extra: Partial<CollectionSpec> = {},
): CollectionSpec {
  return {
    name: 'items',
    format,
    files,
    metric: 'cosine',
    idColumn: 'id',
    vectorColumn: 'vector',
    M: 16,
    efConstruction: 200,
    ef: 80,
    ...extra,
  };
}

export interface ReadResult {
  rows: Row[];
  problems: ProblemCollector;
}

export async function readAll(
  dir: string,
  s: CollectionSpec,
  options: { maxLineBytes?: number; keep?: number } = {},
): Promise<ReadResult> {
  const problems = new ProblemCollector(options.keep ?? 100);
  const rows: Row[] = [];
  const reader = readerFor(s.format);
  for await (const row of reader({
    spec: s,
    files: localReleaseFiles(dir),
    problems,
    maxLineBytes: options.maxLineBytes ?? 1 << 20,
  })) {
    rows.push(row);
  }
  return { rows, problems };
}

/** Rows without their origin, for comparing formats. */
export function content(
  rows: Row[],
): { id: string; vector: number[]; metadata: Record<string, unknown> | null }[] {
  return rows.map((r) => ({ id: r.id, vector: Array.from(r.vector), metadata: r.metadata }));
}

/** Deterministic pseudo-random vectors (mulberry32), exactly representable in float32. */
export function vectors(n: number, dims: number, seed = 7): Float32Array[] {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296 - 0.5;
  };
  return Array.from({ length: n }, () => Float32Array.from({ length: dims }, next));
}

export interface JsonlRow {
  id: string;
  vector: number[];
  metadata?: Record<string, unknown> | null;
}

export function jsonlText(rows: JsonlRow[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

export async function writeJsonl(path: string, rows: JsonlRow[], gzip = false): Promise<void> {
  const text = jsonlText(rows);
  await writeFile(path, gzip ? gzipSync(text) : text);
}

export async function writeRaw(
  vectorsPath: string,
  idsPath: string,
  ids: string[],
  vecs: Float32Array[],
): Promise<void> {
  const dims = vecs[0]?.length ?? 0;
  const buf = Buffer.alloc(vecs.length * dims * 4);
  vecs.forEach((v, i) => {
    for (let j = 0; j < dims; j++) buf.writeFloatLE(v[j] as number, (i * dims + j) * 4);
  });
  await writeFile(vectorsPath, buf);
  await writeFile(idsPath, ids.join('\n') + '\n');
}

/** The Spark-style LIST of FLOAT (or DOUBLE) schema: `vector` LIST → repeated `list` → `element`. */
export function listSchema(name: string, element: 'FLOAT' | 'DOUBLE' = 'FLOAT'): SchemaElement[] {
  return [
    { name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
    { name: 'element', type: element, repetition_type: 'OPTIONAL' },
  ];
}

export type ParquetColumn =
  | { name: string; kind: 'string'; data: (string | null)[] }
  | { name: string; kind: 'int32'; data: (number | null)[] }
  | { name: string; kind: 'int64'; data: (bigint | null)[] }
  | { name: string; kind: 'double'; data: (number | null)[] }
  | { name: string; kind: 'boolean'; data: (boolean | null)[] }
  | { name: string; kind: 'list<float>' | 'list<double>'; data: ((number | null)[] | null)[] }
  | { name: string; kind: 'list<string>'; data: (string[] | null)[] };

function schemaFor(c: ParquetColumn): SchemaElement[] {
  switch (c.kind) {
    case 'string':
      return [{ name: c.name, type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' }];
    case 'int32':
      return [{ name: c.name, type: 'INT32', repetition_type: 'OPTIONAL' }];
    case 'int64':
      return [{ name: c.name, type: 'INT64', repetition_type: 'OPTIONAL' }];
    case 'double':
      return [{ name: c.name, type: 'DOUBLE', repetition_type: 'OPTIONAL' }];
    case 'boolean':
      return [{ name: c.name, type: 'BOOLEAN', repetition_type: 'OPTIONAL' }];
    case 'list<float>':
      return listSchema(c.name, 'FLOAT');
    case 'list<double>':
      return listSchema(c.name, 'DOUBLE');
    case 'list<string>':
      return [
        { name: c.name, repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'OPTIONAL' },
      ];
  }
}

/** Writes a Parquet file with hyparquet-writer (SNAPPY, its default codec) and an explicit schema. */
export function writeParquet(path: string, columns: ParquetColumn[], rowGroupSize?: number): void {
  parquetWriteFile({
    filename: path,
    schema: [{ name: 'root', num_children: columns.length }, ...columns.flatMap(schemaFor)],
    columnData: columns.map((c) => ({ name: c.name, data: c.data })),
    codec: 'SNAPPY',
    ...(rowGroupSize === undefined ? {} : { rowGroupSize }),
  });
}
