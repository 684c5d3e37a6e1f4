import { UnprocessableError } from './errors';
import { parseVersion } from './names';
import type { CollectionReport, VersionRecord } from './version';

export const CHANGED_BY = ['build', 'api', 'cli', 'page'] as const;
export type ChangedBy = (typeof CHANGED_BY)[number];

export interface Pointer {
  space: string;
  /** Active version, or null before the first activation. */
  version: string | null;
  generation: number;
  previous: string | null;
  /** The largest version number ever activated: automatic activation only moves above it. */
  highWater: number;
  changedAt: string | null;
  changedBy: ChangedBy | null;
}

export interface HistoryEntry {
  generation: number;
  from: string | null;
  to: string;
  at: string;
  by: ChangedBy;
}

export function emptyPointer(space: string): Pointer {
  return {
    space,
    version: null,
    generation: 0,
    previous: null,
    highWater: 0,
    changedAt: null,
    changedBy: null,
  };
}

/** The pointer after switching to `target`; the caller writes it only if generation is still `current.generation`. */
export function nextPointer(current: Pointer, target: string, by: ChangedBy, now: Date): Pointer {
  const n = parseVersion(target) ?? 0;
  return {
    space: current.space,
    version: target,
    generation: current.generation + 1,
    previous: current.version,
    highWater: Math.max(current.highWater, n),
    changedAt: now.toISOString(),
    changedBy: by,
  };
}

export function historyEntryFor(p: Pointer): HistoryEntry | undefined {
  if (p.version === null || p.changedAt === null || p.changedBy === null) return undefined;
  return { generation: p.generation, from: p.previous, to: p.version, at: p.changedAt, by: p.changedBy };
}

/** Automatic activation is monotonic: a late or redelivered old build never moves the pointer back. */
export function mayAutoActivate(current: Pointer, version: string): boolean {
  return (parseVersion(version) ?? 0) > current.highWater;
}

/**
 * Explicit activation may choose any READY version, but not one whose collections are incompatible
 * with what is serving (different dims or metric) unless forced: clients hold vectors of that shape.
 */
export function assertActivatable(
  target: VersionRecord,
  active: VersionRecord | undefined,
  force: boolean,
): void {
  if (target.status !== 'READY') {
    throw new UnprocessableError(
      `Version ${target.version} is ${target.status}, only a READY version can be activated`,
      {
        extras: { versionStatus: target.status },
      },
    );
  }
  if (!active || force || active.version === target.version) return;
  const diffs = compatibilityDiffs(active.collections ?? {}, target.collections ?? {});
  if (diffs.length) {
    throw new UnprocessableError(
      `Version ${target.version} is incompatible with active ${active.version}: ${diffs.join('; ')}. Set "force": true to activate anyway`,
      { extras: { incompatibilities: diffs } },
    );
  }
}

export function compatibilityDiffs(
  active: Record<string, CollectionReport>,
  target: Record<string, CollectionReport>,
): string[] {
  const diffs: string[] = [];
  for (const [name, a] of Object.entries(active)) {
    const t = target[name];
    if (!t) {
      diffs.push(`collection ${name} is missing`);
      continue;
    }
    if (t.dims !== a.dims) diffs.push(`collection ${name} has ${t.dims} dims, active has ${a.dims}`);
    if (t.metric !== a.metric)
      diffs.push(`collection ${name} uses metric ${t.metric}, active uses ${a.metric}`);
  }
  return diffs;
}
