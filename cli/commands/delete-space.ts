/** `vicinity delete-space <space>`: the space stops answering at once; the sweeper deletes what it stored. */
import { assertSpace } from '../args';
import type { PointerView } from '../context';
import { CliError } from '../io';
import type { RegisterCommand } from './command';

export const registerDeleteSpace: RegisterCommand = (program, { io, context }) => {
  program
    .command('delete-space')
    .description('delete a space: 404 at once, then its snapshots, versions, history and erasures')
    .argument('<space>')
    .option('--include-inputs', 'also delete its uploads under incoming/')
    .option('--yes', 'do not ask for the name again')
    .option('--by <who>', 'who', 'cli')
    .action(async (space: string, o) => {
      assertSpace(space);
      const ctx = context();
      ctx.requireAdminApi('delete-space');
      if (!o.yes) {
        const typed = await io.ask?.(
          `This deletes space ${space} and everything it stored. Type its name to confirm: `,
        );
        if (typed === undefined)
          throw new CliError(
            `no input to confirm the deletion of ${space}; nothing was deleted`,
            'type the name when asked, or pass --yes (scripts)',
          );
        if (typed.trim() !== space)
          throw new CliError('the name did not match; nothing was deleted', 'type it exactly, or pass --yes');
      }
      const pointer = (await ctx.space(space, 1)).pointer as PointerView;
      await ctx.request(
        'DELETE',
        `/v1/spaces/${encodeURIComponent(space)}`,
        {
          expectedGeneration: pointer.generation,
          by: o.by,
          ...(o.includeInputs ? { includeInputs: true } : {}),
        },
        true,
      );
      io.out(
        `${space}: deleted (answers 404 now); the sweeper removes its snapshots${o.includeInputs ? ' and uploads' : ''} and records`,
      );
    });
};
