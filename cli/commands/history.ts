/** `vicinity history`: every switch of the pointer. */
import { assertSpace } from '../args';
import { table, when } from '../format';
import type { RegisterCommand } from './command';

export const registerHistory: RegisterCommand = (program, { io, context }) => {
  program
    .command('history')
    .description('every switch of the pointer: generation, from, to, by, at')
    .argument('<space>')
    .option('--json', 'JSON output')
    .action(async (space: string, o) => {
      assertSpace(space);
      const history = await context().history(space);
      if (o.json) return io.out(JSON.stringify({ space, history }, null, 2));
      if (history.length === 0) return io.out(`${space}: the pointer never moved`);
      io.out(
        table(
          ['GENERATION', 'FROM', 'TO', 'BY', 'AT'],
          history.map((h) => [h.generation, h.from ?? '-', h.to, h.by, when(h.at)]),
        ),
      );
    });
};
