/**
 * `vicinity erase <space> <collection> <id…>` / `--file ids.txt`: erase items (right to be forgotten)
 * through the signed admin API, in batches; `vicinity restore` lifts an erasure; `vicinity erasures`
 * lists them. The ids leave every answer at once (strong reads) and stored snapshots within a day.
 */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { MAX_ERASE_IDS } from '../../functions/core/erasure';
import { assertSpace } from '../args';
import { CliError } from '../io';
import type { RegisterCommand } from './command';

const enc = encodeURIComponent;

/** Ids from the arguments and a file (one per line; blank lines and `#` comments skipped), distinct. */
export async function idsToErase(args: string[], file: string | undefined, cwd: string): Promise<string[]> {
  const fromFile = file
    ? (await readFile(resolve(cwd, file), 'utf8'))
        .split(/\r?\n/)
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith('#'))
    : [];
  return [...new Set([...args, ...fromFile])];
}

export const registerErase: RegisterCommand = (program, { io, context }) => {
  program
    .command('erase')
    .description(
      'erase items from every answer of every version at once, and from stored snapshots within a day',
    )
    .argument('<space>')
    .argument('<collection>')
    .argument('[ids...]', 'item ids (or --file)')
    .option('--file <path>', 'a file of ids, one per line (thousands are sent in batches)')
    .option('--reason <text>', 'why (kept in the erasure record)')
    .option('--by <who>', 'who asked (kept in the erasure record)', 'cli')
    .option('--json', 'JSON output')
    .action(async (space: string, collection: string, args: string[], o) => {
      assertSpace(space);
      const ids = await idsToErase(args, o.file, io.cwd);
      if (!ids.length) throw new CliError('no ids to erase', 'give ids as arguments or --file ids.txt');
      const ctx = context();
      ctx.requireAdminApi('erase');
      const records: unknown[] = [];
      for (let i = 0; i < ids.length; i += MAX_ERASE_IDS) {
        const batch = ids.slice(i, i + MAX_ERASE_IDS);
        const [first, ...rest] = batch as [string, ...string[]];
        const answer = await ctx.request(
          'DELETE',
          `/v1/spaces/${enc(space)}/collections/${enc(collection)}/items/${enc(first)}`,
          { by: o.by, ...(o.reason ? { reason: o.reason } : {}), ...(rest.length ? { ids: rest } : {}) },
          true,
        );
        records.push(...((answer.body.erasures as unknown[]) ?? []));
        if (ids.length > MAX_ERASE_IDS)
          io.err(`erased ${Math.min(i + MAX_ERASE_IDS, ids.length)}/${ids.length}`);
      }
      if (o.json) return io.out(JSON.stringify({ space, collection, erasures: records }, null, 2));
      io.out(
        `${space}/${collection}: ${ids.length} id${ids.length === 1 ? '' : 's'} erased — gone from every answer now (consistency=strong; within a second otherwise), purged from stored snapshots by the sweeper`,
      );
      io.out(`status: vicinity erasures ${space}`);
    });

  program
    .command('restore')
    .description('lift an erasure (re-consent): the item comes back with the next release')
    .argument('<space>')
    .argument('<collection>')
    .argument('<id>')
    .option('--reason <text>', 'why')
    .option('--by <who>', 'who', 'cli')
    .action(async (space: string, collection: string, id: string, o) => {
      assertSpace(space);
      const ctx = context();
      ctx.requireAdminApi('restore');
      await ctx.request(
        'POST',
        `/v1/spaces/${enc(space)}/collections/${enc(collection)}/items/${enc(id)}/restore`,
        { by: o.by, ...(o.reason ? { reason: o.reason } : {}) },
        true,
      );
      io.out(`${space}/${collection}/${id}: restored; it comes back with the next release`);
    });

  program
    .command('erasures')
    .description('list the erasures of a space with their status (ERASED, PURGED, RESTORED)')
    .argument('<space>')
    .option('--json', 'JSON output')
    .action(async (space: string, o) => {
      assertSpace(space);
      const ctx = context();
      ctx.requireAdminApi('erasures');
      const answer = await ctx.request('GET', `/v1/spaces/${enc(space)}/erasures`, undefined, true);
      const list = (answer.body.erasures ?? []) as Record<string, string>[];
      if (o.json) return io.out(JSON.stringify(answer.body, null, 2));
      if (!list.length) return io.out(`${space}: no erasures`);
      for (const e of list)
        io.out(
          `${e.collection}/${e.id}\t${e.status}\terased ${e.erasedAt} by ${e.by}${e.purgedAt ? `\tpurged ${e.purgedAt}` : ''}${e.restoredAt ? `\trestored ${e.restoredAt}` : ''}`,
        );
    });
};
