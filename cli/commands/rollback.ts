/** `vicinity rollback`: switch back to the previous version through the (signed) admin API. */
import { switchOptions, switchOptionsOf, switchPointer } from '../switch';
import type { RegisterCommand } from './command';

export const registerRollback: RegisterCommand = (program, { io, context }) => {
  switchOptions(
    program
      .command('rollback')
      .description('switch back to the previous version (a second rollback goes forward again)')
      .argument('<space>'),
  ).action(async (space: string, o) => switchPointer(context(), io, space, undefined, switchOptionsOf(o)));
};
