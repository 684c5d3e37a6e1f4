/**
 * docs/performance.md is written by several benches: each owns one section between marker comments
 * (`<!-- bench:NAME:start -->` … `<!-- bench:NAME:end -->`) and replaces only that, leaving the rest.
 */
import { readFile, writeFile } from 'node:fs/promises';

export const PERFORMANCE_DOC = 'docs/performance.md';

const start = (name: string) => `<!-- bench:${name}:start -->`;
const end = (name: string) => `<!-- bench:${name}:end -->`;

/**
 * `doc` with section `name` replaced by `content`. Without its markers, `legacyHeading` (the heading the
 * section used to start with, up to the next heading of the same level) is replaced; failing that, the
 * section is appended (or, for `at: 'start'`, put first).
 */
export function replaceSection(
  doc: string,
  name: string,
  content: string,
  opts: { legacyHeading?: string; at?: 'start' | 'end' } = {},
): string {
  const block = `${start(name)}\n${content.trim()}\n${end(name)}\n`;
  const a = doc.indexOf(start(name));
  const b = doc.indexOf(end(name));
  if (a >= 0 && b > a) {
    const after = doc.slice(b + end(name).length).replace(/^\n/, '');
    return doc.slice(0, a) + block + after;
  }
  if (opts.legacyHeading) {
    const h = doc.indexOf(`${opts.legacyHeading}\n`);
    if (h >= 0 && (h === 0 || doc[h - 1] === '\n')) {
      const level = opts.legacyHeading.match(/^#+ /)?.[0] ?? '# ';
      const next = doc.indexOf(`\n${level}`, h + opts.legacyHeading.length);
      const tail = next >= 0 ? doc.slice(next + 1) : '';
      return `${doc.slice(0, h)}${block}${tail ? `\n${tail}` : ''}`;
    }
  }
  if (!doc.trim()) return block;
  return opts.at === 'start' ? `${block}\n${doc}` : `${doc.replace(/\n*$/, '\n')}\n${block}`;
}

/** Rewrites section `name` of docs/performance.md (created when missing), the rest untouched. */
export async function writeSection(
  name: string,
  content: string,
  opts: { legacyHeading?: string; at?: 'start' | 'end' } = {},
  path = PERFORMANCE_DOC,
): Promise<void> {
  const doc = await readFile(path, 'utf8').catch(() => '');
  await writeFile(path, replaceSection(doc, name, content, opts));
}
