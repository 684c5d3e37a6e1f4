/** `vicinity spaces`: the spaces and their active versions. */
import { table } from '../format';
import type { RegisterCommand } from './command';

export const registerSpaces: RegisterCommand = (program, { io, context }) => {
  program
    .command('spaces')
    .description('list the spaces and their active versions')
    .option('--json', 'JSON output')
    .action(async (o) => {
      const spaces = await context().spaces();
      if (o.json) return io.out(JSON.stringify({ spaces }, null, 2));
      if (spaces.length === 0)
        return io.out('No spaces yet: publish one with `vicinity publish <space> <dir>`');
      io.out(
        table(
          ['SPACE', 'ACTIVE', 'GENERATION'],
          spaces.map((s) => [s.space, s.active?.version ?? '-', s.active?.generation ?? 0]),
        ),
      );
    });
};
