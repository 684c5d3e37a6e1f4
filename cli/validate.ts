/**
 * `vicinity validate <dir>`: the builder's checks, run locally on a release folder before anything
 * is uploaded — release.json parsed by the same code, every named file present, every row read by the
 * same streaming readers (ids, vectors, dims, metadata, line length), duplicate ids and empty
 * collections. Problems are printed as `path:line: message`, as the build would report them.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import {
  localReleaseFiles,
  ProblemCollector,
  type ReleaseFiles,
  readerFor,
} from '../functions/adapters/readers/index';
import { formatProblem, ReleaseInvalidError, type ReleaseProblem } from '../functions/core/errors';
import { parseRelease, type ReleaseSpec } from '../functions/core/release';
import { duration, shownPath, table } from './format';
import type { Io } from './io';
import { Progress } from './progress';

/** The build's default (VICINITY_MAX_LINE_BYTES). */
export const DEFAULT_MAX_LINE_BYTES = 1 << 20;

export interface ValidateOptions {
  progress: boolean;
  /** Problems kept (and printed) per collection; all are counted. */
  keep?: number;
  maxLineBytes?: number;
  /** release.json as it will be uploaded (publish may rewrite `activate`). */
  releaseText?: string;
}

export interface CollectionCheck {
  name: string;
  format: string;
  metric: string;
  rows: number;
  dims?: number;
  metadataFields: string[];
  problemCount: number;
}

export interface ValidateResult {
  problems: ReleaseProblem[];
  problemCount: number;
  warnings: string[];
  collections: CollectionCheck[];
  spec?: ReleaseSpec;
}

/** ReleaseFiles that count the bytes read, for the progress bar. */
function counting(files: ReleaseFiles, onBytes: (n: number) => void): ReleaseFiles {
  return {
    size: (f) => files.size(f),
    async stream(f): Promise<Readable> {
      const s = await files.stream(f);
      const tap = new PassThrough({ highWaterMark: 1 << 20 });
      s.on('data', (chunk: Buffer) => onBytes(chunk.length));
      s.on('error', (err) => tap.destroy(err));
      return s.pipe(tap);
    },
    async range(f, offset, n) {
      const out = await files.range(f, offset, n);
      onBytes(out.length);
      return out;
    },
  };
}

export async function validateRelease(dir: string, io: Io, opts: ValidateOptions): Promise<ValidateResult> {
  const keep = opts.keep ?? 20;
  const maxLineBytes = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const result: ValidateResult = { problems: [], problemCount: 0, warnings: [], collections: [] };
  const text = opts.releaseText ?? (await readFile(join(dir, 'release.json'), 'utf8').catch(() => undefined));
  if (text === undefined) {
    result.problems.push({ file: 'release.json', message: 'not found in the release folder' });
    result.problemCount = 1;
    return result;
  }
  let spec: ReleaseSpec;
  try {
    spec = await parseRelease(text);
  } catch (err) {
    if (!(err instanceof ReleaseInvalidError)) throw err;
    result.problems.push(...err.problems);
    result.problemCount = err.problemCount;
    return result;
  }
  result.spec = spec;
  const local = localReleaseFiles(dir);

  const sizes = new Map<string, number | undefined>();
  for (const f of new Set(spec.collections.flatMap((c) => c.files))) {
    const size = await local.size(f);
    sizes.set(f, size);
    if (size === undefined) {
      result.problems.push({ file: f, message: 'named in release.json but not in the release folder' });
      result.problemCount++;
    }
  }
  const total = [...sizes.values()].reduce<number>((a, b) => a + (b ?? 0), 0);
  const progress = new Progress(io, { label: 'validate', total, unit: 'bytes', bar: opts.progress });
  let read = 0;
  const files = counting(local, (n) => {
    read += n;
    progress.update(read);
  });

  const fieldsByCollection = new Map<string, Set<string>>();
  for (const c of spec.collections) {
    if (c.files.some((f) => sizes.get(f) === undefined)) continue;
    const problems = new ProblemCollector(keep);
    const seen = new Map<string, string>();
    const fields = new Set<string>();
    let rows = 0;
    let dims: number | undefined;
    for await (const row of readerFor(c.format)({ spec: c, files, problems, maxLineBytes })) {
      const first = seen.get(row.id);
      if (first !== undefined) {
        problems.add({
          file: row.file,
          line: row.line,
          message: `duplicate id ${JSON.stringify(row.id)} (first at ${first})`,
        });
        continue;
      }
      seen.set(row.id, `${row.file}:${row.line}`);
      rows++;
      dims ??= row.vector.length;
      if (row.metadata) for (const k of Object.keys(row.metadata)) fields.add(k);
    }
    if (rows === 0) problems.add({ file: c.files[0] as string, message: `collection ${c.name} is empty` });
    fieldsByCollection.set(c.name, fields);
    result.problems.push(...problems.problems);
    result.problemCount += problems.count;
    result.collections.push({
      name: c.name,
      format: c.format,
      metric: c.metric,
      rows,
      ...(dims !== undefined ? { dims } : {}),
      metadataFields: [...fields].sort(),
      problemCount: problems.count,
    });
  }
  progress.done();
  if (spec.seenField && ![...fieldsByCollection.values()].some((f) => f.has(spec.seenField as string))) {
    result.warnings.push(
      `seenField "${spec.seenField}" is in no collection's metadata: excludeSeen will have nothing to leave out`,
    );
  }
  return result;
}

/** Prints a validation result; returns whether the release is valid. */
export function printValidation(io: Io, dir: string, r: ValidateResult, ms: number): boolean {
  const shown = shownPath(io.cwd, dir);
  for (const p of r.problems) io.out(formatProblem({ ...p, file: join(shown, p.file) }));
  if (r.problemCount > r.problems.length) io.out(`… and ${r.problemCount - r.problems.length} more problems`);
  for (const w of r.warnings) io.out(`warning: ${w}`);
  if (r.collections.length) {
    io.out(
      table(
        ['COLLECTION', 'FORMAT', 'METRIC', 'ITEMS', 'DIMS', 'PROBLEMS', 'METADATA'],
        r.collections.map((c) => [
          c.name,
          c.format,
          c.metric,
          c.rows,
          c.dims ?? '-',
          c.problemCount,
          c.metadataFields.join(',') || '-',
        ]),
      ),
    );
  }
  const items = r.collections.reduce((a, c) => a + c.rows, 0);
  if (r.problemCount === 0) {
    io.out(
      `OK: ${shown} is a valid release (${r.collections.length} collections, ${items} items, checked in ${duration(ms)})`,
    );
    return true;
  }
  return false;
}
