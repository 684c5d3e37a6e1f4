/** `vicinity settings <space> [--delete-inputs-after-build true|false]`: shows or sets a space's settings. */
import { assertSpace } from '../args';
import { CliError } from '../io';
import type { RegisterCommand } from './command';

function bool(value: string): boolean {
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new CliError(`--delete-inputs-after-build takes true or false, not ${JSON.stringify(value)}`);
}

export const registerSettings: RegisterCommand = (program, { io, context }) => {
  program
    .command('settings')
    .description("show a space's settings, or set them (admin API)")
    .argument('<space>')
    .option(
      '--delete-inputs-after-build <true|false>',
      "delete each release's uploads once its build ends (release.json's own field still decides for its release)",
    )
    .action(async (space: string, o: { deleteInputsAfterBuild?: string }) => {
      assertSpace(space);
      const ctx = context();
      const path = `/v1/spaces/${encodeURIComponent(space)}`;
      let settings: unknown;
      if (o.deleteInputsAfterBuild === undefined) {
        settings = (await ctx.request('GET', path)).body.settings;
      } else {
        ctx.requireAdminApi('settings');
        const body = { deleteInputsAfterBuild: bool(o.deleteInputsAfterBuild) };
        settings = (await ctx.request('PUT', `${path}/settings`, body, true)).body.settings;
      }
      const s = settings as { deleteInputsAfterBuild: boolean };
      io.out(`${space}: deleteInputsAfterBuild=${s.deleteInputsAfterBuild}`);
    });
};
