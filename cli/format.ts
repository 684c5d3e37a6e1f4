/** Plain-text tables and number formats for the CLI. */
import { isAbsolute, relative } from 'node:path';
import type { VersionRecord } from '../functions/core/version';

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

/** m:ss, for an ETA. */
export function clock(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** A compact local date-time (UTC, to the second) from an ISO string. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '-';
  return iso.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

export function num(x: number | undefined, digits = 4): string {
  if (x === undefined || x === null || Number.isNaN(x)) return '-';
  return Number.isInteger(x) ? String(x) : x.toFixed(digits);
}

/** Left-aligned columns (right-aligned when a column is numeric), two spaces apart. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = rows.map((r) => r.map((c) => String(c)));
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] ?? '').length)));
  const numeric = header.map(
    (_, i) => cells.length > 0 && cells.every((r) => /^-?[\d.,]+%?$|^-$/.test(r[i] ?? '')),
  );
  const line = (r: string[]) =>
    r
      .map((c, i) => (numeric[i] ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(header), ...cells.map(line)].join('\n');
}

/** A path as a person would type it from `cwd`: relative inside it, absolute outside. */
export function shownPath(cwd: string, path: string): string {
  const rel = relative(cwd, path);
  return rel === '' ? '.' : rel.startsWith('..') || isAbsolute(rel) ? path : rel;
}

/** Shortens a string to `max` characters with an ellipsis. */
export function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, Math.max(0, max - 1))}…`;
}

/** The summary of a version that publish and status print. */
export function reportTable(v: Pick<VersionRecord, 'collections'>): string {
  const rows = Object.entries(v.collections ?? {}).map(([name, c]) => [
    name,
    c.count,
    c.dims,
    c.metric,
    `${c.M}/${c.efConstruction}/${c.ef}`,
    num(c.recallAt10, 3),
    c.overlapAt10 !== undefined ? `${num(c.overlapAt10, 3)} vs ${c.overlapWith}` : '-',
  ]);
  return table(['COLLECTION', 'ITEMS', 'DIMS', 'METRIC', 'M/EFC/EF', 'RECALL@10', 'OVERLAP@10'], rows);
}
