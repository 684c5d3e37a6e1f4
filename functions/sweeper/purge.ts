// sweeper/: erasure purges and space deletions, finished on every sweep (idempotent, resumable).
import { allVersions } from '../builder/retention';
import { KEY_PREFIX } from '../contract';
import { erasedIds } from '../core/erasure';
import type { BlobStore, Log, Registry, SpaceState } from '../core/ports';
import { MAX_PURGE_ATTEMPTS, purgeStalledReason } from '../core/purge-budget';
import type { VersionRecord } from '../core/version';
import { type Manifest, servedManifestKey } from '../snapshot/manifest';
import { purgeSnapshot, unreferencedKeys } from '../snapshot/purge';
import { holdingKey, incomingReleasesHolding } from './incoming';

export interface PurgeDeps {
  store: BlobStore;
  registry: Registry;
  log: Log;
  /** Local scratch space for downloads and rebuilt segments. */
  workDir: string;
  /** Objects a purge replaced are deleted this long after the switch (requests in flight finish). */
  graceMs: number;
  now?: () => Date;
  /** Epoch ms the invocation is killed at: no segment rebuild starts that cannot finish before it. */
  deadlineMs?: number | undefined;
  /** VICINITY_PURGE_SEGMENT_ITEMS: a rebuilt segment holds at most this many items (more: pieces). */
  pieceItems?: number | undefined;
}

export interface PurgeReport {
  /** Versions switched to a rewritten snapshot. */
  rewritten: { space: string; version: string; removed: Record<string, number>; ms: number }[];
  /** Erasures now PURGED. */
  purged: number;
  /** Old objects deleted after their grace. */
  deletedObjects: number;
  /** Versions whose purge stopped before a rebuild that could not finish before the deadline. */
  deferred?: { space: string; version: string; reason: string }[];
  /** Spaces whose erasures made no progress in MAX_PURGE_ATTEMPTS purge attempts in a row (purgeError). */
  stalled?: { space: string; attempts: number; reason: string }[];
}

const currentKey = (v: VersionRecord) => servedManifestKey(v);

/**
 * Purges a space's erased ids from every READY version not yet checked against the latest erasures
 * (`purgedThrough` below the space's `erasureAdded`), marks the erasures PURGED once every READY version
 * is clean, and deletes objects a purge replaced once their grace has passed.
 */
export async function purgeSpace(
  deps: PurgeDeps,
  space: string,
  state: SpaceState,
  report: PurgeReport,
): Promise<void> {
  const { registry, store, log } = deps;
  const now = deps.now ?? (() => new Date());
  const versions = (await allVersions(registry, space)).filter((v) => v.status === 'READY');
  let changed = false;
  const added = state.erasureAdded;
  if (added > 0) {
    const records = await registry.listErasures(space);
    const ids = erasedIds(records);
    const pending = records.filter((r) => r.status === 'ERASED');
    // Erasures not yet checked against the uploads: which incoming releases still hold the id.
    const unchecked = pending.filter((r) => r.incomingReleases === undefined);
    if (unchecked.length) {
      const holding = await incomingReleasesHolding(deps, space, unchecked);
      for (const r of unchecked)
        await registry.updateErasure(space, r.collection, r.id, 'ERASED', {
          incomingReleases: holding.get(holdingKey(r.collection, r.id)) ?? [],
        });
    }
    // An attempt is counted before any work, so one killed at the deadline stays counted; progress
    // (a version switched) resets the count; MAX_PURGE_ATTEMPTS in a row without it: purgeError.
    const todo = versions.filter((v) => (v.purgedThrough ?? 0) < added);
    const prior = Math.max(0, ...pending.map((r) => r.purgeAttempts ?? 0));
    const attempts = prior + 1;
    const stalled = async (n: number, last: string | undefined) => {
      const reason = purgeStalledReason(n, last);
      for (const r of pending)
        await registry.updateErasure(space, r.collection, r.id, 'ERASED', { purgeError: reason });
      log.error('purge of erased ids is stalled: the ids remain in stored snapshots', {
        space,
        attempts: n,
        erasures: pending.length,
        reason,
      });
      report.stalled = [...(report.stalled ?? []), { space, attempts: n, reason }];
    };
    let reported = false;
    if (pending.length && todo.length) {
      for (const r of pending)
        await registry.updateErasure(space, r.collection, r.id, 'ERASED', {
          purgeAttempts: attempts,
          purgeAttemptAt: now().toISOString(),
        });
      // Attempts that never came back to count their end were killed (or cut short): say so now,
      // before this one may be killed too.
      if (prior >= MAX_PURGE_ATTEMPTS) {
        await stalled(prior, undefined);
        reported = true;
      }
    }
    let deferred: string | undefined;
    let progress = false;
    for (const v of todo) {
      const t0 = Date.now();
      const key = currentKey(v);
      const text = await store.getText(key);
      if (text === undefined) continue; // retention racing: the next sweep sees it DELETED
      const manifest = JSON.parse(text) as Manifest;
      const generation = (v.manifestGeneration ?? 0) + 1;
      const result = await purgeSnapshot({ store, log, workDir: deps.workDir }, manifest, ids, generation, {
        deadlineMs: deps.deadlineMs,
        pieceItems: deps.pieceItems,
      });
      if (result && 'deferred' in result) {
        // Nothing switched: the version stays unchecked and the erasures ERASED for the next sweep.
        deferred = result.deferred;
        report.deferred = [
          ...(report.deferred ?? []),
          { space, version: v.version, reason: result.deferred },
        ];
        break;
      }
      const out = result;
      const ok = await registry.switchManifest(space, v.version, v.manifestGeneration ?? 0, {
        manifestKey: out ? out.manifestKey : key,
        manifestGeneration: out ? generation : (v.manifestGeneration ?? 0),
        purgedThrough: added,
        ...(out ? { purgeSwitchedAt: now().toISOString() } : {}),
      });
      if (!ok) {
        log.warn('purge lost the switch (the version changed meanwhile); the next sweep retries', {
          space,
          version: v.version,
        });
        continue;
      }
      progress = true;
      if (out) {
        changed = true;
        report.rewritten.push({ space, version: v.version, removed: out.removed, ms: Date.now() - t0 });
      }
    }
    // PURGED once every READY version has been checked against (at least) this list.
    const fresh = (await allVersions(registry, space)).filter((v) => v.status === 'READY');
    const done = fresh.every((v) => (v.purgedThrough ?? 0) >= added);
    // A stall reported at the start that this attempt then got past is no longer one.
    if (reported && (progress || done)) report.stalled = report.stalled?.filter((x) => x.space !== space);
    if (pending.length && todo.length && !done) {
      if (progress) {
        for (const r of pending)
          await registry.updateErasure(space, r.collection, r.id, 'ERASED', {
            purgeAttempts: 0,
            purgeError: null,
          });
      } else if (attempts >= MAX_PURGE_ATTEMPTS && (deferred || !reported)) {
        if (reported) report.stalled?.pop(); // the same space, now with this attempt's reason
        await stalled(attempts, deferred);
      }
    }
    if (pending.length && done) {
      const at = now().toISOString();
      for (const r of pending) {
        if (
          await registry.updateErasure(space, r.collection, r.id, 'ERASED', {
            status: 'PURGED',
            purgedAt: at,
            purgeError: null,
          })
        )
          report.purged++;
      }
      changed = true;
    }
  }
  // Instances re-read the list (statuses) and the version records (manifest keys) when the counter moves.
  if (changed) await registry.bumpErasureCounter(space);

  // Objects a purge replaced, once the grace after the switch has passed (resumable: recomputed each sweep).
  for (const v of await allVersions(registry, space)) {
    if (v.status !== 'READY' || !v.manifestGeneration || !v.purgeSwitchedAt) continue;
    if (now().getTime() - Date.parse(v.purgeSwitchedAt) < deps.graceMs) continue;
    const key = currentKey(v);
    const text = await store.getText(key);
    if (text === undefined) continue;
    const stale = await unreferencedKeys(store, JSON.parse(text) as Manifest, key);
    if (!stale.length) continue;
    await store.deleteKeys(stale);
    report.deletedObjects += stale.length;
    log.info('purge deleted replaced snapshot objects', { space, version: v.version, objects: stale.length });
  }
}

/**
 * Finishes a space deletion: its snapshots (and, if asked, its uploads and staging), then its records,
 * the pointer item (with the deletion mark) last — so a crash anywhere leaves a mark the next sweep
 * finishes, and the space answers 404 throughout.
 */
export async function finishSpaceDeletion(
  deps: Pick<PurgeDeps, 'store' | 'registry' | 'log'>,
  space: string,
  state: SpaceState,
): Promise<number> {
  const deletion = state.deletion;
  if (!deletion) return 0;
  const prefixes = [
    `${KEY_PREFIX.snapshots}${space}/`,
    ...(deletion.includeInputs ? [`${KEY_PREFIX.incoming}${space}/`] : []),
  ];
  let objects = 0;
  for (const prefix of prefixes) {
    const keys = (await deps.store.list(prefix)).map((o) => o.key);
    // Manifests first, so a half-deleted snapshot is never mistaken for a whole one.
    await deps.store.deleteKeys(keys.filter((k) => k.endsWith('/manifest.json')));
    await deps.store.deleteKeys(keys.filter((k) => !k.endsWith('/manifest.json')));
    objects += keys.length;
  }
  await deps.registry.deleteSpaceRecords(space);
  deps.log.warn('space deleted', { space, objects, includeInputs: deletion.includeInputs });
  return objects;
}
