import { mkdir, statfs } from 'node:fs/promises';
import { readerFor } from '../adapters/readers/index';
import { ProblemCollector, type ReleaseFiles } from '../adapters/readers/types';
import { KEY_PREFIX } from '../contract';
import { ReleaseInvalidError, type ReleaseProblem } from '../core/errors';
import { BlobChangedError, type Log } from '../core/ports';
import { type CollectionSpec, parseRelease, type ReleaseSpec } from '../core/release';
import type { ReleaseEvent } from '../core/version';
import { type BuildContext, type BuildDeps, PROGRESS_MS } from './deps';
import { s3ReleaseFiles, waitForFiles } from './s3-release-files';
import { VectorTable } from './vector-table';

/** Input ETags: those recorded when the build (this attempt or an earlier one) first saw them, and how to record new ones. */
export interface InputEtags {
  recorded?: Readonly<Record<string, string>>;
  save(etags: Record<string, string>): Promise<void>;
}

const RELEASE_JSON = 'release.json';

/**
 * The release as the build sees it: its parsed release.json and its folder, once every file it names
 * is there (waited for) and the work dir has room for the index files. A release that cannot be
 * built as given is a ReleaseInvalidError (the version FAILS; it is not retried).
 *
 * release.json is read as the ETag the event named; each data file's ETag is recorded in the version
 * when first seen (so a retry reads the same bytes) and every later read is of that ETag.
 */
export async function openRelease(
  deps: Pick<BuildDeps, 'store' | 'config'>,
  event: ReleaseEvent,
  workDir: string,
  inputs: InputEtags = { save: async () => undefined },
): Promise<{ spec: ReleaseSpec; files: ReleaseFiles }> {
  const { store, config } = deps;
  const recorded = inputs.recorded ?? {};
  const releaseEtag = recorded[RELEASE_JSON] ?? event.etag;
  let text: string | undefined;
  try {
    text = await store.getText(event.key, releaseEtag ? { ifMatch: releaseEtag } : undefined);
  } catch (err) {
    if (!(err instanceof BlobChangedError)) throw err;
    throw changed(
      RELEASE_JSON,
      err,
      'release.json was replaced after this event (the new upload has its own event)',
    );
  }
  if (text === undefined)
    throw new ReleaseInvalidError([{ file: RELEASE_JSON, message: 'release.json is gone' }]);
  const spec = await parseRelease(text);
  const prefix = `${KEY_PREFIX.incoming}${event.space}/${event.release}/`;
  const named = spec.collections.flatMap((c) => c.files);
  const { missing, bytes } = await waitForFiles(s3ReleaseFiles(store, prefix), named, config.fileWaitMs);
  if (missing.length) {
    throw new ReleaseInvalidError(
      missing.map((file) => ({
        file,
        message: `named in release.json but not in the release folder after waiting ${Math.round(config.fileWaitMs / 1000)} s`,
      })),
    );
  }
  const etags: Record<string, string> = { ...recorded };
  if (releaseEtag) etags[RELEASE_JSON] = releaseEtag;
  const problems: ReleaseProblem[] = [];
  for (const file of new Set(named)) {
    const etag = (await store.head(prefix + file))?.etag;
    if (!etag) continue;
    const first = recorded[file];
    if (first && first !== etag) {
      problems.push({
        file,
        message: `changed while the build read it (first seen as ETag ${first}, now ${etag}); upload a new release instead of changing one`,
      });
    }
    etags[file] ??= etag;
  }
  if (problems.length) throw new ReleaseInvalidError(problems);
  if (Object.keys(etags).some((f) => recorded[f] === undefined)) await inputs.save(etags);
  await mkdir(workDir, { recursive: true });
  await checkDiskSpace(bytes, workDir);
  return { spec, files: s3ReleaseFiles(store, prefix, etags) };
}

/** A file replaced while the build read it: the release is not what the event named; FAILED, not retried. */
export function changed(file: string, err: BlobChangedError, message?: string): ReleaseInvalidError {
  return new ReleaseInvalidError(
    [
      {
        file,
        message:
          message ??
          `changed while the build read it (ETag ${err.expected}${err.actual ? `, now ${err.actual}` : ''}); upload a new release instead of changing one`,
      },
    ],
    1,
    { cause: err },
  );
}

/**
 * The refusal for an input replaced under the build: a BlobChangedError anywhere in `err`'s cause chain
 * (readers wrap storage errors), as a ReleaseInvalidError naming the file relative to the release folder
 * `prefix`; undefined for any other error.
 */
export function changedInput(err: unknown, prefix: string): ReleaseInvalidError | undefined {
  for (let e = err, depth = 0; e && depth < 8; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof ReleaseInvalidError) return undefined; // already refused, in its own words
    if (e instanceof BlobChangedError) {
      return changed(e.key.startsWith(prefix) ? e.key.slice(prefix.length) : e.key, e);
    }
  }
  return undefined;
}

async function checkDiskSpace(input: number, dir: string): Promise<void> {
  // Where statfs is unsupported the check is skipped, not the build: a full disk still fails it (ENOSPC).
  const fs = await statfs(dir).catch(() => undefined);
  if (!fs) return;
  const free = fs.bavail * fs.bsize;
  // The index is roughly the size of the vectors; text input is larger than its vectors, so input size bounds it.
  if (input > free) {
    throw new ReleaseInvalidError([
      {
        file: 'release.json',
        message: `the release needs about ${Math.ceil(input / 2 ** 20)} MB of local disk for its index files, only ${Math.floor(free / 2 ** 20)} MB free; raise the build function's ephemeral storage`,
      },
    ]);
  }
}

/** Streams and validates one collection's rows into a table; every problem (up to 10, and their count) is reported at once. */
export async function ingest(
  c: CollectionSpec,
  files: ReleaseFiles,
  maxLineBytes: number,
  log: Log,
  ctx: BuildContext,
  /** Ids erased from this collection (left out, counted in `dropped.count`), and every erased id with the seen field (stripped from it). */
  erasure?: { ids?: Set<string>; all?: Set<string>; seenField?: string; dropped: { count: number } },
): Promise<VectorTable> {
  const problems = new ProblemCollector(10);
  // id → where it was first seen, packed as file index · 2^32 + line: a number, not a string, per row.
  const seen = new Map<string, number>();
  const fileIndex = new Map<string, number>();
  let table: VectorTable | undefined;
  let lastLog = Date.now();
  for await (const row of readerFor(c.format)({ spec: c, files, problems, maxLineBytes })) {
    let fi = fileIndex.get(row.file);
    if (fi === undefined) {
      fi = fileIndex.size;
      fileIndex.set(row.file, fi);
    }
    const first = seen.get(row.id);
    if (first !== undefined) {
      const firstFile = [...fileIndex].find(([, i]) => i === Math.floor(first / 2 ** 32))?.[0];
      problems.add({
        file: row.file,
        line: row.line,
        message: `duplicate id ${JSON.stringify(row.id)} (first at ${firstFile}:${first % 2 ** 32})`,
      });
      continue;
    }
    seen.set(row.id, fi * 2 ** 32 + row.line);
    if (erasure?.ids?.has(row.id)) {
      // Erased (core/erasure.ts): never indexed again until restored.
      erasure.dropped.count++;
      continue;
    }
    const seenList = erasure?.seenField && erasure.all?.size ? row.metadata?.[erasure.seenField] : undefined;
    if (Array.isArray(seenList) && row.metadata && erasure?.seenField && erasure.all) {
      const all = erasure.all;
      row.metadata[erasure.seenField] = seenList.filter((s) => !all.has(String(s)));
    }
    table ??= new VectorTable(row.vector.length, c.metric === 'cosine');
    table.push(row);
    if (Date.now() - lastLog > PROGRESS_MS) {
      lastLog = Date.now();
      log.info('parsing', { ...ctx, collection: c.name, rows: table.count });
    }
  }
  if (!table || table.count === 0) {
    problems.add({ file: c.files[0] as string, message: `collection ${c.name} is empty` });
  }
  if (!problems.ok) throw new ReleaseInvalidError(problems.problems, problems.count);
  return table as VectorTable;
}
