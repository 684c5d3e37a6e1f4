import type { Readable } from 'node:stream';
import type { ReleaseProblem } from '../../core/errors';
import type { CollectionSpec } from '../../core/release';

/** One validated input row. The vector has exactly the collection's dims, all finite. */
export interface Row {
  id: string;
  vector: Float32Array;
  metadata: Record<string, unknown> | null;
  /** Where it came from, for messages: release-relative file and 1-based line (JSONL, raw ids) or row (Parquet). */
  file: string;
  line: number;
}

/** Random and streamed access to the files of one release folder (S3 in production). */
export interface ReleaseFiles {
  /** Size in bytes, or undefined when the file does not exist (yet). */
  size(file: string): Promise<number | undefined>;
  /** The whole file as a stream, or bytes [offset, offset + bytes) of it. */
  stream(file: string, range?: { offset: number; bytes: number }): Promise<Readable>;
  /** Bytes [offset, offset + bytes) of the file (Parquet footers and column chunks). */
  range(file: string, offset: number, bytes: number): Promise<Uint8Array>;
}

/**
 * Collects problems: keeps the first `keep` for the reason a person reads, counts all of them,
 * so a release with a million bad rows reports the first few and the total.
 */
export class ProblemCollector {
  readonly problems: ReleaseProblem[] = [];
  count = 0;
  constructor(readonly keep = 10) {}
  add(problem: ReleaseProblem): void {
    this.count++;
    if (this.problems.length < this.keep) this.problems.push(problem);
  }
  get ok(): boolean {
    return this.count === 0;
  }
}

export interface ReaderOptions {
  spec: CollectionSpec;
  files: ReleaseFiles;
  problems: ProblemCollector;
  /** Lines longer than this are a problem (JSONL, raw ids). */
  maxLineBytes: number;
  /** Only part of the one file in `spec.files` (a partition task of a big file). */
  part?: FilePart;
}

/**
 * Part of one big input file. `bytes`: the JSONL lines whose first byte lies in [start, end) — the
 * reader starts after the first newline at or after start − 1 and reads past end to finish its last
 * line, so every line belongs to exactly one part; when start > 0, lines are numbered from 1 within
 * the part (the part's first line of the file is unknown until every earlier part has counted its
 * lines) and `lines` is set to how many lines the part holds, blank and invalid ones included.
 * `rowGroups`: Parquet row groups [from, to); rows keep their numbers within the file.
 * `rows`: raw input rows [from, to) — the vectors file's bytes [from·4·dims, to·4·dims) and the ids
 * file's bytes [idsStart, idsEnd), which the planner found to hold exactly those rows' id lines
 * (builder/sharded/plan.ts); rows keep their numbers within the file.
 */
export interface FilePart {
  bytes?: { start: number; end: number };
  rowGroups?: { from: number; to: number };
  rows?: RowRange;
  lines?: number;
}

/** Rows [from, to) of a raw input and the ids file bytes [idsStart, idsEnd) holding their id lines. */
export interface RowRange {
  from: number;
  to: number;
  idsStart: number;
  idsEnd: number;
}

/**
 * Reads every row of a collection, in file order, yielding only valid rows and recording a problem
 * (file + line/row + what is wrong) for each invalid one. The first row fixes the dims when the
 * spec does not. Streams: memory is bounded by one row group / one line, never the file.
 */
export type CollectionReader = (options: ReaderOptions) => AsyncGenerator<Row>;
