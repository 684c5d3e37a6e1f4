/** `vicinity publish`: upload a release (files first, release.json last) and follow its build. */
import { intArg } from '../args';
import type { RegisterCommand } from './command';

export const registerPublish: RegisterCommand = (program, { io, context }) => {
  program
    .command('publish')
    .description('upload a release (files first, release.json last) and follow its build to READY or FAILED')
    .argument('<space>', 'space to publish into, e.g. music')
    .argument('<paths...>', 'a release folder with release.json, or data files (users.jsonl …)')
    .option('--release <name>', 'release name (default: the UTC time, e.g. 20261125-204512)')
    .option('--no-activate', 'build it but leave the pointer where it is (sets "activate": false)')
    .option('--no-wait', 'return once release.json is uploaded')
    .option('--no-progress', 'plain progress lines, no bar')
    .option('--validate', 'run `validate` on the files before uploading anything')
    .option('--metric <metric>', 'metric of generated collections when no release.json is given', 'cosine')
    .option('--timeout <seconds>', 'how long to follow the build', intArg('--timeout', 1, 86_400), 1800)
    .option('--json', 'print the version record as JSON')
    .action(async (space: string, paths: string[], o) => {
      // Loaded on use: the S3 SDK and the readers are the CLI's heaviest imports.
      const { publish } = await import('../publish');
      await publish(context(), io, space, paths, {
        release: o.release,
        activate: o.activate,
        wait: o.wait,
        progress: o.progress,
        validate: Boolean(o.validate),
        metric: o.metric,
        timeout: o.timeout,
        json: Boolean(o.json),
      });
    });
};
