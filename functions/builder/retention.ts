import type { BlobStore, Log, Registry } from '../core/ports';
import type { VersionRecord } from '../core/version';
import { snapshotPrefix } from '../snapshot/manifest';

export interface RetentionDeps {
  store: BlobStore;
  registry: Registry;
  log: Log;
  /** READY versions kept besides the active and previous one. */
  keep: number;
  graceMs: number;
}

export async function allVersions(registry: Registry, space: string): Promise<VersionRecord[]> {
  const out: VersionRecord[] = [];
  let before: string | undefined;
  do {
    const page = await registry.listVersions(space, 100, before);
    out.push(...page.versions);
    before = page.next;
  } while (before);
  return out;
}

/**
 * Keeps the active version, the previous one and the newest `keep` READY versions; marks older READY
 * versions DELETED, waits out any activation that read them as READY, and only then deletes their files.
 * A version the pointer names by then is restored to READY and keeps its files.
 */
export async function applyRetention(deps: RetentionDeps, space: string): Promise<string[]> {
  const { registry, log } = deps;
  const pointer = await registry.getPointer(space);
  const ready = (await allVersions(registry, space))
    .filter((v) => v.status === 'READY')
    .sort((a, b) => b.number - a.number);
  const keep = new Set([
    pointer.version,
    pointer.previous,
    ...ready.slice(0, deps.keep).map((v) => v.version),
  ]);
  const marked: string[] = [];
  for (const v of ready) {
    if (keep.has(v.version)) continue;
    if (await registry.transitionStatus(space, v.version, 'READY', 'DELETED')) marked.push(v.version);
  }
  if (!marked.length) return [];
  await new Promise((r) => setTimeout(r, deps.graceMs));
  const now = await registry.getPointer(space);
  const deleted: string[] = [];
  for (const version of marked) {
    if (version === now.version || version === now.previous) {
      await registry.transitionStatus(space, version, 'DELETED', 'READY');
      log.warn('retention spared a version an activation chose meanwhile', { space, version });
      continue;
    }
    await deleteSnapshotFiles(deps, space, version);
    deleted.push(version);
  }
  return deleted;
}

/**
 * Deletes the files of a DELETED version (the manifest first, so a half-deleted snapshot is never
 * mistaken for a whole one) and records when (`filesDeletedAt`), so the sweeper, which finishes a
 * retention run that died in its grace period, knows this one is done.
 */
export async function deleteSnapshotFiles(
  deps: Pick<RetentionDeps, 'store' | 'registry' | 'log'>,
  space: string,
  version: string,
  now = new Date(),
): Promise<number> {
  const keys = (await deps.store.list(snapshotPrefix(space, version))).map((o) => o.key);
  const manifest = keys.filter((k) => k.endsWith('/manifest.json'));
  await deps.store.deleteKeys(manifest);
  await deps.store.deleteKeys(keys.filter((k) => !k.endsWith('/manifest.json')));
  await deps.registry.setVersionFields(space, version, 'DELETED', { filesDeletedAt: now.toISOString() });
  deps.log.info('retention deleted a snapshot', { space, version, files: keys.length });
  return keys.length;
}
