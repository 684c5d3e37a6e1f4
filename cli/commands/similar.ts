/** `vicinity similar`: an item's neighbours (or recommendations in another collection). */
import { labelOf } from '../../functions/core/diff';
import { assertSpace, enc } from '../args';
import { checkFilter, type Result, resultsTable, searchOptions, searchOptionsOf } from '../results';
import type { RegisterCommand } from './command';

export const registerSimilar: RegisterCommand = (program, { io, context }) => {
  searchOptions(
    program
      .command('similar')
      .description(
        "an item's neighbours, e.g. `similar music artists 154` or `similar music users 2 --target artists --exclude-seen`",
      )
      .argument('<space>')
      .argument('<collection>')
      .argument('<id>')
      .option('--target <collection>', 'search another collection of the same version (recommendations)')
      .option('--exclude-seen', "leave out what the item's seenField lists"),
  ).action(async (space: string, collection: string, id: string, opts) => {
    const o = searchOptionsOf(opts);
    const ctx = context();
    assertSpace(space);
    checkFilter(o.filter);
    const q = new URLSearchParams({ k: String(o.k) });
    if (opts.target) q.set('target', opts.target);
    if (opts.excludeSeen) q.set('excludeSeen', 'true');
    if (o.filter) q.set('filter', o.filter);
    if (o.version) q.set('version', o.version);
    const base = `/v1/spaces/${enc(space)}/collections/${enc(collection)}/items/${enc(id)}`;
    const answer = await ctx.get<{ version: string; target: string; results: Result[] }>(
      `${base}/similar?${q}`,
    );
    if (o.json) return io.out(JSON.stringify(answer, null, 2));
    const item = await ctx
      .get<{ metadata: Record<string, unknown> | null }>(`${base}?version=${answer.version}`)
      .catch(() => undefined);
    const label = labelOf(item?.metadata);
    io.out(
      `${space} ${answer.version} · ${collection}/${id}${label ? ` "${label}"` : ''} → ${answer.target}` +
        `${opts.excludeSeen ? ' (seen items left out)' : ''}: ${answer.results.length} results`,
    );
    io.out(resultsTable(answer.results, o.fields));
  });
};
