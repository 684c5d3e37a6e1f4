import { KEY_PREFIX } from '../contract';
import { ReleaseInvalidError, type ReleaseProblem } from './errors';
import { isValidName, isValidReleaseName, NAME_PATTERN, RELEASE_NAME_PATTERN } from './names';

export const METRICS = ['cosine', 'ip', 'l2'] as const;
export type Metric = (typeof METRICS)[number];
export const FORMATS = ['jsonl', 'jsonl.gz', 'parquet', 'raw'] as const;
export type InputFormat = (typeof FORMATS)[number];

/**
 * Index defaults, from measurement (KNOWN-TRAPS): M=16, efC=200 reaches recall@10 0.996 at ef=80 on
 * 1M x 64 clustered data. The quality gate re-measures on every release.
 */
export const INDEX_DEFAULTS = Object.freeze({ M: 16, efConstruction: 200, ef: 80 });
/**
 * `recallTarget`: the recall@10 (tie-aware, on the gate's sample) the build tunes each collection's
 * serving `ef` to reach, when the release does not set `ef` itself.
 */
export const QUALITY_DEFAULTS = Object.freeze({ minRecall: 0.95, sample: 200, recallTarget: 0.99 });
/**
 * The `ef` values the quality gate tries, smallest first, when it tunes a collection's serving `ef`
 * (builder/quality-gate.ts): the first that reaches the recall target is kept. The last is the cap.
 */
export const EF_LADDER: readonly number[] = Object.freeze([
  10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024,
]);

export interface CollectionSpec {
  name: string;
  format: InputFormat;
  /** Files relative to the release folder, in read order. For raw input: [vectors, ids]. */
  files: string[];
  metric: Metric;
  dims?: number;
  idColumn: string;
  vectorColumn: string;
  M: number;
  efConstruction: number;
  /** The serving ef: the release's, or INDEX_DEFAULTS.ef until the quality gate tunes it. */
  ef: number;
  /** Whether release.json set `ef` (kept as is); otherwise (absent too) the quality gate tunes it. */
  efExplicit?: boolean;
  /** This collection's own recall target, if release.json set one (else the release-wide one). */
  recallTarget?: number;
  segments?: number;
  /** Requested shard count; "auto" picks one shard unless the collection is too large for one task or for the query function. */
  shards?: number | 'auto';
}

export interface ReleaseSpec {
  collections: CollectionSpec[];
  activate: boolean;
  quality: { minRecall?: number; sample?: number; minOverlap?: number | null; recallTarget?: number };
  seenField?: string;
}

export function formatFromFile(file: string): InputFormat | undefined {
  if (file.endsWith('.jsonl.gz') || file.endsWith('.ndjson.gz')) return 'jsonl.gz';
  if (file.endsWith('.jsonl') || file.endsWith('.ndjson')) return 'jsonl';
  if (file.endsWith('.parquet')) return 'parquet';
  return undefined;
}

/**
 * Parses release.json text into a ReleaseSpec, or throws ReleaseInvalidError naming every problem. The
 * schema (./release-schema, zod) is loaded by the first call, not at a function's init.
 */
export async function parseRelease(text: string, file = 'release.json'): Promise<ReleaseSpec> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new ReleaseInvalidError([{ file, message: `not valid JSON: ${(err as Error).message}` }], 1, {
      cause: err,
    });
  }
  const { releaseSchema } = await import('./release-schema');
  const parsed = releaseSchema.safeParse(raw);
  if (!parsed.success) {
    const problems: ReleaseProblem[] = parsed.error.issues.map((i) => ({
      file,
      message: `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`,
    }));
    throw new ReleaseInvalidError(problems.slice(0, 10), problems.length);
  }
  const r = parsed.data;
  const problems: ReleaseProblem[] = [];
  const collections: CollectionSpec[] = [];
  for (const [name, c] of Object.entries(r.collections)) {
    if (!isValidName(name)) {
      problems.push({ file, message: `collections.${name}: invalid collection name` });
      continue;
    }
    let format: InputFormat | undefined = c.format;
    let files: string[];
    if (c.vectors !== undefined) {
      format = 'raw';
      files = [c.vectors, c.ids as string];
    } else {
      files = c.files ?? [c.file as string];
      // Spark writes side files next to its parts; they are never data.
      files = files.filter((f) => !/(^|\/)_SUCCESS$/.test(f) && !f.endsWith('.crc'));
      format ??= formatFromFile(files[0] ?? '');
    }
    if (format === undefined) {
      problems.push({
        file,
        message: `collections.${name}: cannot tell the format of "${files[0]}"; use .jsonl, .jsonl.gz, .parquet or a "format" field`,
      });
      continue;
    }
    collections.push({
      name,
      format,
      files,
      metric: c.metric,
      dims: c.dims,
      idColumn: c.idColumn ?? 'id',
      vectorColumn: c.vectorColumn ?? 'vector',
      M: c.M ?? INDEX_DEFAULTS.M,
      efConstruction: c.efConstruction ?? INDEX_DEFAULTS.efConstruction,
      ef: c.ef ?? INDEX_DEFAULTS.ef,
      efExplicit: c.ef !== undefined,
      ...(c.recallTarget !== undefined ? { recallTarget: c.recallTarget } : {}),
      segments: c.segments,
      shards: c.shards ?? 'auto',
    });
  }
  if (problems.length) throw new ReleaseInvalidError(problems.slice(0, 10), problems.length);
  return { collections, activate: r.activate, quality: r.quality ?? {}, seenField: r.seenField };
}

export interface ReleaseKey {
  space: string;
  release: string;
  prefix: string;
}

/** `incoming/{space}/{release}/release.json` → its parts, or undefined for any other key. */
export function parseReleaseKey(key: string): ReleaseKey | undefined {
  const c = classifyReleaseKey(key);
  return c?.kind === 'release' ? c.key : undefined;
}

/**
 * What an uploaded `…/release.json` under `incoming/` is: a release (`release`), a release whose
 * folder name the contract refuses in a valid space (`refused-release`: the build records a FAILED
 * version saying why), or a key that names no space one could record it in (`refused`). Undefined for
 * a key that is not a release.json under `incoming/` at all (nothing to say about it).
 */
export type ReleaseKeyClass =
  | { kind: 'release'; key: ReleaseKey }
  | { kind: 'refused-release'; space: string; release: string; reason: string }
  | { kind: 'refused'; reason: string };

export function classifyReleaseKey(key: string): ReleaseKeyClass | undefined {
  if (!key.startsWith(KEY_PREFIX.incoming) || !(key === 'release.json' || key.endsWith('/release.json')))
    return undefined;
  const parts = key.slice(KEY_PREFIX.incoming.length).split('/');
  if (parts.length !== 3) {
    return {
      kind: 'refused',
      reason: `release.json must be at incoming/{space}/{release}/release.json, not at ${key}`,
    };
  }
  const [space, release] = parts as [string, string, string];
  if (!isValidName(space)) {
    return {
      kind: 'refused',
      reason: `invalid space name ${JSON.stringify(space)} in ${key}: must match ${NAME_PATTERN.source}`,
    };
  }
  if (!isValidReleaseName(release)) {
    return {
      kind: 'refused-release',
      space,
      release,
      reason: `invalid release folder name ${JSON.stringify(release)}: must match ${RELEASE_NAME_PATTERN.source}`,
    };
  }
  return { kind: 'release', key: { space, release, prefix: `${KEY_PREFIX.incoming}${space}/${release}/` } };
}
