/** `vicinity activate`: point a space at a READY version through the (signed) admin API. */
import { switchOptions, switchOptionsOf, switchPointer } from '../switch';
import type { RegisterCommand } from './command';

export const registerActivate: RegisterCommand = (program, { io, context }) => {
  switchOptions(
    program
      .command('activate')
      .description('point the space at a READY version (compare-and-swap on the generation)')
      .argument('<space>')
      .argument('<version>', 'e.g. v2'),
  ).action(async (space: string, version: string, o) =>
    switchPointer(context(), io, space, version, switchOptionsOf(o)),
  );
};
