/** `vicinity versions`: the versions of a space, newest first. */
import { assertSpace, intArg } from '../args';
import { recallCurves, versionTable } from '../version-table';
import type { RegisterCommand } from './command';

export const registerVersions: RegisterCommand = (program, { io, context }) => {
  program
    .command('versions')
    .description('the versions of a space, newest first, with release names and build results')
    .argument('<space>')
    .option('--limit <n>', 'how many', intArg('--limit', 1, 100), 20)
    .option('--release <name>', 'only versions of this release')
    .option('--curves', "every listed version's recall curves (default: the newest READY version's)")
    .option('--json', 'JSON output')
    .action(
      async (space: string, o: { json?: boolean; limit: number; release?: string; curves?: boolean }) => {
        assertSpace(space);
        const ctx = context();
        const [{ pointer }, all] = await Promise.all([ctx.space(space, 1), ctx.versions(space, o.limit)]);
        const versions = o.release ? all.filter((v) => v.release === o.release) : all;
        if (o.json) return io.out(JSON.stringify({ space, pointer, versions }, null, 2));
        if (versions.length === 0) {
          return io.out(
            o.release
              ? `No version of release ${o.release} among the newest ${o.limit}`
              : `No versions of ${space}`,
          );
        }
        io.out(versionTable(versions, pointer));
        // The quality gate's ef → recall@10 curves: how the serving ef was chosen (marked *…*).
        const curved = versions.filter((v) => v.status === 'READY' && recallCurves(v).length);
        const lines = (o.curves ? curved : curved.slice(0, 1)).flatMap(recallCurves);
        if (lines.length)
          io.out(['', 'recall@10 by ef (quality gate sample; *serving ef*):', ...lines].join('\n'));
      },
    );
};
