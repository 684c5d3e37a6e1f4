/**
 * Which releases under `incoming/{space}/` still hold erased ids (the erasure record's
 * `incomingReleases`): Vicinity never edits a team's uploads, it tells them where the id still is.
 * Each release folder with a parseable release.json is read once for all the ids asked about, through
 * the build's own streaming readers (JSONL, gzip, Parquet, raw), collection by collection, stopping
 * as soon as every id of a collection was found: memory stays one row (group), work is one read of
 * the inputs per check. A folder that cannot be read (no release.json, invalid, files missing) is
 * skipped and logged: it could not be built either.
 */
import { ProblemCollector, readerFor } from '../adapters/readers/index';
import { s3ReleaseFiles } from '../builder/s3-release-files';
import { KEY_PREFIX } from '../contract';
import type { BlobStore, Log } from '../core/ports';
import { parseRelease } from '../core/release';

const RELEASE_JSON = 'release.json';

/** The key an (collection, id) pair has in the answer. */
export const holdingKey = (collection: string, id: string) => `${collection}\u0000${id}`;

/**
 * (collection, id) → the release folders (names, in key order) whose inputs hold it, for `targets`.
 * Pairs found nowhere are absent from the map.
 */
export async function incomingReleasesHolding(
  deps: { store: BlobStore; log: Log; maxLineBytes?: number },
  space: string,
  targets: readonly { collection: string; id: string }[],
): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  if (!targets.length) return found;
  const wanted = new Map<string, Set<string>>();
  for (const t of targets) {
    const s = wanted.get(t.collection) ?? new Set<string>();
    wanted.set(t.collection, s);
    s.add(t.id);
  }
  const root = `${KEY_PREFIX.incoming}${space}/`;
  const releases = new Set<string>();
  for (const o of await deps.store.list(root)) {
    const rest = o.key.slice(root.length);
    const slash = rest.indexOf('/');
    if (slash > 0 && rest.slice(slash + 1) === RELEASE_JSON) releases.add(rest.slice(0, slash));
  }
  for (const release of [...releases].sort()) {
    const prefix = `${root}${release}/`;
    try {
      const text = await deps.store.getText(prefix + RELEASE_JSON);
      if (text === undefined) continue;
      const spec = await parseRelease(text);
      const files = s3ReleaseFiles(deps.store, prefix);
      for (const c of spec.collections) {
        const ids = wanted.get(c.name);
        if (!ids) continue;
        const left = new Set(ids);
        const rows = readerFor(c.format)({
          spec: c,
          files,
          problems: new ProblemCollector(0),
          maxLineBytes: deps.maxLineBytes ?? 1 << 20,
        });
        for await (const row of rows) {
          if (!left.delete(row.id)) continue;
          const key = holdingKey(c.name, row.id);
          found.set(key, [...(found.get(key) ?? []), release]);
          if (left.size === 0) break;
        }
      }
    } catch (err) {
      deps.log.warn('an incoming release could not be checked for erased ids', {
        space,
        release,
        error: String(err),
      });
    }
  }
  return found;
}
