/** `vicinity diff`: how much two versions' neighbour lists disagree (GET /v1/spaces/{space}/diff). */
import type { DiffAnswer, Labelled } from '../../functions/core/diff';
import { DIFF_DEFAULTS, DIFF_LIMITS } from '../../functions/core/diff';
import { assertSpace, assertVersionArg, enc, intArg } from '../args';
import { clip, num, table } from '../format';
import type { Io } from '../io';
import type { RegisterCommand } from './command';

const pct = (x: number) => `${Math.round(x * 100)}%`;
const names = (l: Labelled[], n = 3) =>
  l.length === 0
    ? '-'
    : `${l
        .slice(0, n)
        .map((x) => x.label ?? x.id)
        .join(', ')}${l.length > n ? ` +${l.length - n}` : ''}`;

export function printDiff(io: Io, d: DiffAnswer): void {
  io.out(
    `${d.space}: ${d.from} → ${d.to}, overlap@${d.k} of neighbour lists over up to ${d.sample} items per collection`,
  );
  io.out('');
  io.out(
    table(
      ['COLLECTION', 'FROM', 'TO', 'IN BOTH', 'SAMPLED', 'MEAN', 'MEDIAN', 'P10', 'SAME', '<HALF'],
      d.collections.map((c) => [
        c.target ? `${c.collection}→${c.target}` : c.collection,
        c.from ? `${c.from.count}×${c.from.dims}` : '-',
        c.to ? `${c.to.count}×${c.to.dims}` : '-',
        c.inBoth,
        c.sampled,
        num(c.meanOverlap, 3),
        num(c.medianOverlap, 2),
        num(c.p10Overlap, 2),
        pct(c.unchanged),
        pct(c.mostlyChanged),
      ]),
    ),
  );
  for (const c of d.collections) {
    io.out('');
    const max = Math.max(1, ...c.histogram.map((h) => h.items));
    io.out(`${c.target ? `${c.collection}→${c.target}` : c.collection}: overlap@${d.k} distribution`);
    for (const h of c.histogram) {
      if (h.items === 0) continue;
      io.out(
        `  ${h.overlap.toFixed(1)}  ${'█'.repeat(Math.max(1, Math.round((30 * h.items) / max)))} ${h.items}`,
      );
    }
    if (c.mostChanged.length) {
      const named = c.mostChanged.some((m) => m.label !== undefined);
      io.out('Most changed:');
      io.out(
        table(
          ['ID', ...(named ? ['NAME'] : []), 'OVERLAP', 'LOST', 'GAINED'],
          c.mostChanged.map((m) => [
            m.id,
            ...(named ? [clip(m.label ?? '-', 28)] : []),
            m.overlap.toFixed(2),
            clip(names(m.removed), 48),
            clip(names(m.added), 48),
          ]),
        ),
      );
    }
  }
  io.out('');
  io.out('Summary:');
  for (const line of d.summary.split('\n')) io.out(`  ${line}`);
  if (!d.compatible) io.out(`  (activate with --force if clients can cope with the new shape)`);
}

export const registerDiff: RegisterCommand = (program, { io, context }) => {
  program
    .command('diff')
    .description(
      'how much two versions disagree: overlap@k of neighbour lists over a sample of items in both',
    )
    .argument('<space>')
    .argument('<from>', 'e.g. the active version, v1')
    .argument('<to>', 'the candidate, e.g. v2')
    .option(
      '--sample <n>',
      'items sampled per collection',
      intArg('--sample', 1, DIFF_LIMITS.sample),
      DIFF_DEFAULTS.sample,
    )
    .option('-k, --k <n>', 'neighbours compared per item', intArg('-k', 1, DIFF_LIMITS.k), DIFF_DEFAULTS.k)
    .option('--top <n>', 'most-changed items listed', intArg('--top', 0, DIFF_LIMITS.top), DIFF_DEFAULTS.top)
    .option('--collection <name>', 'only this collection')
    .option(
      '--target <name>',
      'compare collection → target neighbours (e.g. users → artists recommendations)',
    )
    .option('--json', 'the raw answer')
    .action(async (space: string, from: string, to: string, o) => {
      const ctx = context();
      assertSpace(space);
      assertVersionArg(from);
      assertVersionArg(to);
      const q = new URLSearchParams({
        from,
        to,
        sample: String(o.sample),
        k: String(o.k),
        top: String(o.top),
      });
      if (o.collection) q.set('collection', o.collection);
      if (o.target) q.set('target', o.target);
      if (io.isTTY) io.err(`comparing ${from} and ${to} (loads both versions)…`);
      const answer = await ctx.get<DiffAnswer>(`/v1/spaces/${enc(space)}/diff?${q}`);
      if (o.json) return io.out(JSON.stringify(answer, null, 2));
      printDiff(io, answer);
    });
};
