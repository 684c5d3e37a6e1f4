/** The versions table `status` and `versions` print: marker, version, status, release, build, shapes or reason. */
import type { PointerView, VersionSummary } from './context';
import { clip, duration, table, when } from './format';

function shapes(v: Pick<VersionSummary, 'collections'>): string {
  const c = Object.entries(v.collections ?? {});
  if (c.length === 0) return '-';
  return c.map(([name, r]) => `${name} ${r.count}×${r.dims} ${r.metric}`).join(', ');
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
