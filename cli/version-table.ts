/** The versions table `status` and `versions` print: marker, version, status, release, build, shapes or reason. */
import type { PointerView, VersionSummary } from './context';
import { clip, duration, table, when } from './format';

function shapes(v: Pick<VersionSummary, 'collections'>): string {
  const c = Object.entries(v.collections ?? {});
  if (c.length === 0) return '-';
  return c
    .map(
      ([name, r]) =>
        `${name} ${r.count}×${r.dims} ${r.metric} ef ${r.ef}${r.efSource === 'tuned' ? ' (tuned)' : ''}${r.recallAt10 !== undefined ? ` r@10 ${r.recallAt10.toFixed(3)}` : ''}`,
    )
    .join(', ');
}

/**
 * Each collection's recall curve (quality gate: ef → recall@10, µs per query on the build machine), the
 * serving ef marked: `tracks: ef 32 0.962 (41 µs) · *ef 48 0.991 (55 µs)* · ef 64 0.996 (70 µs)`.
 */
export function recallCurves(v: Pick<VersionSummary, 'version' | 'collections'>): string[] {
  return Object.entries(v.collections ?? {})
    .filter(([, r]) => r.recallCurve?.length)
    .map(([name, r]) => {
      const points = (r.recallCurve ?? []).map((p) => {
        const s = `ef ${p.ef} ${p.recall.toFixed(3)} (${Math.round(p.usPerQuery)} µs)`;
        return p.ef === r.ef ? `*${s}*` : s;
      });
      const target =
        r.recallTarget !== undefined
          ? ` — target ${r.recallTarget}${r.recallTargetMet === false ? ' NOT reached' : ''}`
          : ' — ef set by the release';
      return `${v.version} ${name}: ${points.join(' · ')}${target}`;
    });
}

const VERSION_HEADER = ['', 'VERSION', 'STATUS', 'RELEASE', 'CREATED', 'BUILD', 'COLLECTIONS / REASON'];

export function versionTable(versions: VersionSummary[], pointer: PointerView | undefined): string {
  return table(
    VERSION_HEADER,
    versions.map((v) => [
      v.version === pointer?.version ? '* active' : v.version === pointer?.previous ? '  previous' : '',
      v.version,
      v.status,
      v.release,
      when(v.createdAt),
      v.buildMs !== undefined ? duration(v.buildMs) : '-',
      v.status === 'FAILED' ? clip(v.reason ?? '', 70) : shapes(v),
    ]),
  );
}
