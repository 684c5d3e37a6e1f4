/** `vicinity validate`: the build's checks on a release folder, before anything is uploaded. */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { intArg } from '../args';
import { shownPath } from '../format';
import { CliError } from '../io';
import type { RegisterCommand } from './command';

/** The build's default longest line (VICINITY_MAX_LINE_BYTES). */
const MAX_LINE_BYTES = 1 << 20;

export const registerValidate: RegisterCommand = (program, { io }) => {
  program
    .command('validate')
    .description("run the build's checks on a release folder locally, before uploading it")
    .argument('<dir>', 'the release folder (with release.json)')
    .option('--no-progress', 'plain progress lines, no bar')
    .option(
      '--max-line-bytes <n>',
      'longest accepted JSONL line',
      intArg('--max-line-bytes', 1, 1 << 30),
      MAX_LINE_BYTES,
    )
    .option('--keep <n>', 'problems listed per collection (all are counted)', intArg('--keep', 1, 10_000), 20)
    .option('--json', 'JSON output')
    .action(async (dir: string, o) => {
      const root = resolve(io.cwd, dir);
      if (!existsSync(root))
        throw new CliError(`${dir} does not exist`, 'pass the release folder (the one holding release.json)');
      const { printValidation, validateRelease } = await import('../validate');
      const t0 = Date.now();
      const r = await validateRelease(root, io, {
        progress: o.progress,
        keep: o.keep,
        maxLineBytes: o.maxLineBytes,
      });
      if (o.json) io.out(JSON.stringify({ valid: r.problemCount === 0, ...r, spec: undefined }, null, 2));
      else printValidation(io, root, r, Date.now() - t0);
      if (r.problemCount > 0) {
        throw new CliError(
          `${shownPath(io.cwd, root)}: ${r.problemCount} problem${r.problemCount > 1 ? 's' : ''}; the build would refuse this release`,
          'fix the lines listed above and run validate again',
        );
      }
    });
};
