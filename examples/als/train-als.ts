/**
 * The ALS trainer's I/O, shared by `vicinity train-als` (cli/) and the first-start demo (local/), so
 * local/ never imports cli/: reads `user item count` rows, trains implicit ALS (./als) and writes a
 * release directory ready for `publish` — a `users` collection whose metadata lists the items each
 * user played (`seen`, named as the release's seenField) and an items collection (e.g. `artists`)
 * with name, tags, total plays and listeners as metadata.
 *
 * The functions here do the I/O; the commander wiring calls trainAlsCommand.
 */
import { createReadStream } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { isValidName, itemIdProblem } from '../../functions/core/names';
import type { Metric } from '../../functions/core/release';
import { type AlsOptions, type CsrMatrix, csrFromTriples, resolveAlsOptions, trainAls } from './als';

/** Interactions as read from a file: ids in first-seen order, one triple per input row. */
export interface Interactions {
  /** External user ids; position = internal user index. */
  users: string[];
  /** External item ids; position = internal item index. */
  items: string[];
  userIndex: Int32Array;
  itemIndex: Int32Array;
  values: Float64Array;
}

/**
 * The demo's settings for examples/lastfm: 32 factors measured as good as 64 there (held-out
 * recall@10 0.223 vs 0.216) at a third of the training time; the rest are ALS_DEFAULTS.
 */
export const LASTFM_DEMO_OPTIONS: Readonly<AlsOptions> = Object.freeze({ factors: 32, seed: 42 });

/**
 * The metric of both collections: inner product, the ALS model's own score (x_u·y_i ≈ preference).
 * Measured on Last.fm (32 factors, 20% held out): users → artists recall@10 0.223 by ip vs 0.077
 * by cosine; artist → artist neighbours sharing a top-3 tag with the query 0.77 by ip vs 0.63 by
 * cosine (artists with ≥ 20 listeners) — cosine drops the vector length, which in implicit ALS
 * carries how much evidence an item has, so rare artists with noisy directions crowd the lists.
 * hnswlib's recall@10 at M=16/efC=200/ef=80 was 0.99 (item → item) and 1.00 (user → item) on ip.
 * The cost: ip neighbours lean towards popular items, and scores are dot products, not in [0, 1].
 */
export const ALS_RELEASE_METRIC: Metric = 'ip';
export const USERS_COLLECTION = 'users';
export const SEEN_FIELD = 'seen';

// ---------------------------------------------------------------------------------------------
// Reading

function splitFields(line: string): string[] {
  const parts = line.includes('\t') ? line.split('\t') : line.split(',');
  return parts.map((p) => {
    const t = p.trim();
    return t.length >= 2 && t.startsWith('"') && t.endsWith('"') ? t.slice(1, -1).replaceAll('""', '"') : t;
  });
}

async function* numberedLines(path: string): AsyncGenerator<{ line: string; n: number }> {
  const rl = createInterface({
    input: createReadStream(path, { encoding: 'utf8' }),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let n = 0;
  try {
    for await (const raw of rl) {
      n++;
      const line = n === 1 ? raw.replace(/^\uFEFF/, '') : raw;
      if (line.trim() === '' || line.startsWith('#')) continue;
      yield { line, n };
    }
  } finally {
    rl.close();
  }
}

/**
 * Reads `user item count` rows separated by tabs or commas (the HetRec `user_artists.dat` format:
 * header `userID\tartistID\tweight`). A first line whose count is not a number is a header; blank
 * lines and lines starting with `#` are skipped; a row without a count counts 1. Repeated
 * (user, item) rows are kept here and summed by the trainer. Throws `path:line: problem`.
 */
export async function readInteractions(path: string): Promise<Interactions> {
  const users: string[] = [];
  const items: string[] = [];
  const userPos = new Map<string, number>();
  const itemPos = new Map<string, number>();
  const u: number[] = [];
  const i: number[] = [];
  const v: number[] = [];
  let first = true;
  for await (const { line, n } of numberedLines(path)) {
    const fields = splitFields(line);
    const isFirst = first;
    first = false;
    if (fields.length < 2 || fields.length > 3) {
      if (isFirst && fields.length > 3) continue;
      throw new Error(
        `${path}:${n}: expected "user item count" (tab- or comma-separated), got ${fields.length} field(s)`,
      );
    }
    const [user, item, countText] = fields as [string, string, string | undefined];
    const count = countText === undefined ? 1 : countText === '' ? Number.NaN : Number(countText);
    if (!Number.isFinite(count)) {
      if (isFirst) continue; // header
      throw new Error(`${path}:${n}: count ${JSON.stringify(countText)} is not a number`);
    }
    for (const [what, id] of [
      ['user', user],
      ['item', item],
    ] as const) {
      const problem = itemIdProblem(id);
      if (problem) throw new Error(`${path}:${n}: ${what} ${problem}`);
    }
    let ui = userPos.get(user);
    if (ui === undefined) {
      ui = users.push(user) - 1;
      userPos.set(user, ui);
    }
    let ii = itemPos.get(item);
    if (ii === undefined) {
      ii = items.push(item) - 1;
      itemPos.set(item, ii);
    }
    u.push(ui);
    i.push(ii);
    v.push(count);
  }
  return {
    users,
    items,
    userIndex: Int32Array.from(u),
    itemIndex: Int32Array.from(i),
    values: Float64Array.from(v),
  };
}

/** The users × items matrix of summed values. */
export function interactionsMatrix(x: Interactions): CsrMatrix {
  return csrFromTriples(x.users.length, x.items.length, x.userIndex, x.itemIndex, x.values);
}

/**
 * Reads `id<TAB>name` rows (first line is a header if it starts with `id`); the name is everything
 * after the first separator. Lines without a name are skipped.
 */
export async function readItemNames(path: string): Promise<Map<string, string>> {
  const names = new Map<string, string>();
  let first = true;
  for await (const { line } of numberedLines(path)) {
    const tab = line.indexOf('\t');
    const isHeader = first && /^\s*(id|itemid|artistid)\s*$/i.test(tab < 0 ? line : line.slice(0, tab));
    first = false;
    if (isHeader || tab < 0) continue;
    const name = line.slice(tab + 1).trim();
    if (name !== '') names.set(line.slice(0, tab).trim(), name);
  }
  return names;
}

/** Reads `id<TAB>tag1|tag2|…` rows (header line allowed, as written by examples/lastfm/prepare.ts). */
export async function readItemTags(path: string): Promise<Map<string, string[]>> {
  const tags = new Map<string, string[]>();
  let first = true;
  for await (const { line } of numberedLines(path)) {
    const tab = line.indexOf('\t');
    const isHeader = first && /^\s*(id|itemid|artistid)\s*$/i.test(tab < 0 ? line : line.slice(0, tab));
    first = false;
    if (isHeader || tab < 0) continue;
    const list = line
      .slice(tab + 1)
      .split('|')
      .map((t) => t.trim())
      .filter((t) => t !== '');
    if (list.length > 0) tags.set(line.slice(0, tab).trim(), list);
  }
  return tags;
}

/** examples/lastfm: the HetRec 2011 Last.fm plays (non-commercial use; see its README). */
export const LASTFM_DIR = fileURLToPath(new URL('../lastfm', import.meta.url));

export interface LastfmDemo {
  /** Path of user_artists.dat. */
  interactionsPath: string;
  interactions: Interactions;
  /** artistID → name (artists.dat). */
  itemNames: Map<string, string>;
  /** artistID → top tags (artist_tags.tsv). */
  itemTags: Map<string, string[]>;
}

/** Reads the demo files of examples/lastfm (user_artists.dat, artists.dat, artist_tags.tsv). */
export async function loadLastfmDemo(dir: string): Promise<LastfmDemo> {
  const interactionsPath = join(dir, 'user_artists.dat');
  const [interactions, itemNames, itemTags] = await Promise.all([
    readInteractions(interactionsPath),
    readItemNames(join(dir, 'artists.dat')),
    readItemTags(join(dir, 'artist_tags.tsv')),
  ]);
  return { interactionsPath, interactions, itemNames, itemTags };
}

// ---------------------------------------------------------------------------------------------
// Writing

export type TrainAlsProgress =
  | { phase: 'read'; users: number; items: number; rows: number }
  | { phase: 'train'; iteration: number; iterations: number; loss?: number; elapsedMs: number }
  | { phase: 'write'; file: string; rows: number; bytes: number };

export interface WriteAlsReleaseOptions {
  interactions: Interactions;
  outDir: string;
  /** Name of the items collection (default `items`; the demo uses `artists`). */
  itemsCollection?: string;
  itemNames?: Map<string, string>;
  itemTags?: Map<string, string[]>;
  /** ALS hyper-parameters; unset ones come from ALS_DEFAULTS. */
  options?: AlsOptions;
  /** `activate` of release.json (default true). */
  activate?: boolean;
  /** Significant digits of the written vector components (default 6). */
  precision?: number;
  onProgress?: (p: TrainAlsProgress) => void;
}

export interface AlsReleaseFile {
  name: string;
  path: string;
  bytes: number;
  rows?: number;
}

export interface AlsReleaseSummary {
  outDir: string;
  usersCollection: string;
  itemsCollection: string;
  metric: Metric;
  /** Rows written to each collection. */
  users: number;
  items: number;
  /** Users / items left out because none of their values is positive (a zero vector has no direction). */
  skippedUsers: number;
  skippedItems: number;
  /** Input rows and distinct (user, item) cells. */
  rows: number;
  interactions: number;
  options: Required<AlsOptions>;
  trainMs: number;
  lossHistory?: number[];
  files: AlsReleaseFile[];
}

/** A vector as compact JSON: each component rounded to `precision` significant digits. */
export function formatVector(v: Float32Array, offset: number, dims: number, precision: number): string {
  const parts = new Array<string>(dims);
  for (let a = 0; a < dims; a++) {
    const x = v[offset + a]!;
    if (!Number.isFinite(x)) throw new Error(`non-finite factor ${x}`);
    parts[a] = String(Number(x.toPrecision(precision)));
  }
  return `[${parts.join(',')}]`;
}

function isZero(v: Float32Array, offset: number, dims: number): boolean {
  for (let a = 0; a < dims; a++) if (v[offset + a] !== 0) return false;
  return true;
}

/** Writes lines in ~1 MB chunks; returns bytes and rows written. */
async function writeLines(
  path: string,
  lines: Iterable<string>,
  onChunk?: (rows: number, bytes: number) => void,
): Promise<{ bytes: number; rows: number }> {
  const handle = await open(path, 'w');
  let bytes = 0;
  let rows = 0;
  try {
    let chunk: string[] = [];
    let size = 0;
    const flush = async () => {
      if (chunk.length === 0) return;
      const buf = Buffer.from(chunk.join(''), 'utf8');
      await handle.write(buf);
      bytes += buf.length;
      chunk = [];
      size = 0;
      onChunk?.(rows, bytes);
    };
    for (const line of lines) {
      chunk.push(line, '\n');
      size += line.length + 1;
      rows++;
      if (size >= 1 << 20) await flush();
    }
    await flush();
  } finally {
    await handle.close();
  }
  return { bytes, rows };
}

/**
 * Trains ALS on the interactions and writes `outDir/users.jsonl`, `outDir/<items>.jsonl` and, last,
 * `outDir/release.json`, both collections with ALS_RELEASE_METRIC (inner product). Users or items
 * whose factors are all zero (no positive value) are left out. Other files in outDir are left alone.
 */
export async function writeAlsRelease(opts: WriteAlsReleaseOptions): Promise<AlsReleaseSummary> {
  const { interactions: x, outDir } = opts;
  const itemsCollection = opts.itemsCollection ?? 'items';
  if (!isValidName(itemsCollection) || itemsCollection === USERS_COLLECTION) {
    throw new Error(
      `items collection name ${JSON.stringify(itemsCollection)} must match ^[a-z0-9][a-z0-9_-]{0,62}$ and not be "users"`,
    );
  }
  const precision = opts.precision ?? 6;
  if (!Number.isInteger(precision) || precision < 1 || precision > 17)
    throw new RangeError('precision must be 1..17');
  const options = resolveAlsOptions(opts.options);
  const nUsers = x.users.length;
  const nItems = x.items.length;

  // Per-user seen lists (distinct items with a positive value, in input order), per-item totals.
  const seen: number[][] = Array.from({ length: nUsers }, () => []);
  const seenSet = new Set<number>();
  const plays = new Float64Array(nItems);
  const listeners = new Int32Array(nItems);
  for (let k = 0; k < x.values.length; k++) {
    const value = x.values[k]!;
    const item = x.itemIndex[k]!;
    plays[item]! += value;
    if (!(value > 0)) continue;
    const key = x.userIndex[k]! * nItems + item;
    if (seenSet.has(key)) continue;
    seenSet.add(key);
    seen[x.userIndex[k]!]!.push(item);
    listeners[item]!++;
  }
  seenSet.clear();

  const matrix = interactionsMatrix(x);
  opts.onProgress?.({ phase: 'read', users: nUsers, items: nItems, rows: x.values.length });
  const started = performance.now();
  const model = trainAls(matrix, options, (p) => opts.onProgress?.({ phase: 'train', ...p }));
  const trainMs = performance.now() - started;
  const f = model.factors;

  await mkdir(outDir, { recursive: true });
  const files: AlsReleaseFile[] = [];
  let skippedUsers = 0;
  let skippedItems = 0;

  const usersFile = `${USERS_COLLECTION}.jsonl`;
  function* userLines(): Generator<string> {
    for (let u = 0; u < nUsers; u++) {
      if (isZero(model.userFactors, u * f, f)) {
        skippedUsers++;
        continue;
      }
      const metadata = { [SEEN_FIELD]: seen[u]!.map((i) => x.items[i]!) };
      yield `{"id":${JSON.stringify(x.users[u])},"vector":${formatVector(model.userFactors, u * f, f, precision)},"metadata":${JSON.stringify(metadata)}}`;
    }
  }
  const itemsFile = `${itemsCollection}.jsonl`;
  function* itemLines(): Generator<string> {
    for (let i = 0; i < nItems; i++) {
      if (isZero(model.itemFactors, i * f, f)) {
        skippedItems++;
        continue;
      }
      const id = x.items[i]!;
      const metadata: Record<string, unknown> = {};
      const name = opts.itemNames?.get(id);
      if (name !== undefined) metadata.name = name;
      const tags = opts.itemTags?.get(id);
      if (tags !== undefined && tags.length > 0) metadata.tags = tags;
      metadata.plays = plays[i]!;
      metadata.listeners = listeners[i]!;
      yield `{"id":${JSON.stringify(id)},"vector":${formatVector(model.itemFactors, i * f, f, precision)},"metadata":${JSON.stringify(metadata)}}`;
    }
  }
  for (const [name, lines] of [
    [usersFile, userLines()],
    [itemsFile, itemLines()],
  ] as const) {
    const path = join(outDir, name);
    const written = await writeLines(path, lines, (rows, bytes) =>
      opts.onProgress?.({ phase: 'write', file: name, rows, bytes }),
    );
    files.push({ name, path, ...written });
  }

  const release = {
    collections: {
      [USERS_COLLECTION]: { file: usersFile, metric: ALS_RELEASE_METRIC },
      [itemsCollection]: { file: itemsFile, metric: ALS_RELEASE_METRIC },
    },
    activate: opts.activate ?? true,
    seenField: SEEN_FIELD,
    description: describeOptions(options),
  };
  const releasePath = join(outDir, 'release.json');
  const releaseText = `${JSON.stringify(release, null, 2)}\n`;
  const handle = await open(releasePath, 'w');
  try {
    await handle.writeFile(releaseText, 'utf8');
  } finally {
    await handle.close();
  }
  files.push({ name: 'release.json', path: releasePath, bytes: Buffer.byteLength(releaseText) });

  const summary: AlsReleaseSummary = {
    outDir,
    usersCollection: USERS_COLLECTION,
    itemsCollection,
    metric: ALS_RELEASE_METRIC,
    users: nUsers - skippedUsers,
    items: nItems - skippedItems,
    skippedUsers,
    skippedItems,
    rows: x.values.length,
    interactions: matrix.indices.length,
    options,
    trainMs,
    files,
  };
  if (model.lossHistory) summary.lossHistory = model.lossHistory;
  return summary;
}

/** One line for release.json's description, so `status`/`versions` show what was trained. */
export function describeOptions(o: Required<AlsOptions>): string {
  const conf = o.scaling === 'log' ? `1+${o.alpha}·log(1+r/${o.epsilon})` : `1+${o.alpha}·r`;
  return `ALS factors=${o.factors} iterations=${o.iterations} regularization=${o.regularization} confidence=${conf} seed=${o.seed}`;
}

// ---------------------------------------------------------------------------------------------
// The command

export interface TrainAlsCommandOptions {
  /** `user item count` file. */
  input: string;
  /** Release directory to write. */
  out: string;
  factors?: number;
  iterations?: number;
  regularization?: number;
  alpha?: number;
  scaling?: 'linear' | 'log';
  epsilon?: number;
  seed?: number;
  /** Items collection name (default `items`). */
  items?: string;
  /** `id<TAB>name` file for item names. */
  names?: string;
  /** `id<TAB>tag|tag` file for item tags. */
  tags?: string;
  activate?: boolean;
}

/** What `vicinity train-als` does: read, train, write; returns the summary to print. */
export async function trainAlsCommand(
  opts: TrainAlsCommandOptions,
  onProgress?: (p: TrainAlsProgress) => void,
): Promise<AlsReleaseSummary> {
  const [interactions, itemNames, itemTags] = await Promise.all([
    readInteractions(opts.input),
    opts.names === undefined ? undefined : readItemNames(opts.names),
    opts.tags === undefined ? undefined : readItemTags(opts.tags),
  ]);
  if (interactions.values.length === 0) throw new Error(`${opts.input}: no interaction rows`);
  return writeAlsRelease({
    interactions,
    outDir: opts.out,
    itemsCollection: opts.items,
    itemNames,
    itemTags,
    activate: opts.activate,
    options: {
      factors: opts.factors,
      iterations: opts.iterations,
      regularization: opts.regularization,
      alpha: opts.alpha,
      scaling: opts.scaling,
      epsilon: opts.epsilon,
      seed: opts.seed,
    },
    onProgress,
  });
}
