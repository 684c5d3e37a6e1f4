/** `vicinity status`: the pointer, who moved it last, what is building, and the newest versions. */
import { assertSpace } from '../args';
import { reportTable, when } from '../format';
import { versionTable } from '../version-table';
import type { RegisterCommand } from './command';

export const registerStatus: RegisterCommand = (program, { io, context }) => {
  program
    .command('status')
    .description(
      'the pointer (active, previous, who moved it) and the newest versions with their release names',
    )
    .argument('<space>')
    .option('--json', 'JSON output')
    .action(async (space: string, o) => {
      assertSpace(space);
      const ctx = context();
      const { pointer, versions } = await ctx.space(space, 10);
      const active = pointer.version ? await ctx.version(space, pointer.version) : undefined;
      if (o.json)
        return io.out(JSON.stringify({ space, pointer, active: active ?? null, versions }, null, 2));
      if (pointer.version) {
        io.out(
          `Space ${space}: active ${pointer.version} (release ${active?.release ?? '?'}), generation ${pointer.generation}, ` +
            `previous ${pointer.previous ?? 'none'}, changed by ${pointer.changedBy ?? '-'} at ${when(pointer.changedAt)}`,
        );
      } else {
        io.out(`Space ${space}: no active version yet`);
      }
      const building = versions.filter((v) => v.status === 'BUILDING');
      if (building.length)
        io.out(`Building: ${building.map((v) => `${v.version} (release ${v.release})`).join(', ')}`);
      if (active?.collections) {
        io.out('');
        io.out(reportTable(active));
      }
      io.out('');
      io.out(versionTable(versions, pointer));
    });
};
