/** `vicinity train-als`: implicit ALS over `user item count` rows into a release folder (examples/als). */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Option } from 'commander';
import { ALS_DEFAULTS } from '../../examples/als/als';
import {
  type AlsReleaseSummary,
  LASTFM_DEMO_OPTIONS,
  LASTFM_DIR,
  type TrainAlsProgress,
  trainAlsCommand,
} from '../../examples/als/train-als';
import { intArg, numArg } from '../args';
import { bytes, duration, shownPath, table } from '../format';
import { CliError } from '../io';
import { Progress } from '../progress';
import type { RegisterCommand } from './command';

export const registerTrainAls: RegisterCommand = (program, { io }) => {
  program
    .command('train-als')
    .description(
      'implicit-feedback ALS (Hu–Koren–Volinsky) over `user item count` rows → a release folder with users and items collections',
    )
    .argument('[input]', 'user,item,count rows (tab- or comma-separated; a header line is skipped)')
    .requiredOption('--out <dir>', 'release folder to write (users.jsonl, <items>.jsonl, release.json)')
    .option('--lastfm', 'train on examples/lastfm (input, artist names and tags; items collection "artists")')
    .option('--items <name>', 'items collection name (default items; artists with --lastfm)')
    .option('--names <file>', 'id<TAB>name file: item names as metadata')
    .option('--tags <file>', 'id<TAB>tag|tag file: item tags as metadata')
    .option('--factors <n>', 'latent dimensions (default 64; 32 with --lastfm)', intArg('--factors', 1, 4096))
    .option('--iterations <n>', 'alternating sweeps (default 15)', intArg('--iterations', 0, 10_000))
    .option('--regularization <x>', 'λ (default 0.1)', numArg('--regularization'))
    .option('--alpha <x>', 'confidence scale α (default 2)', numArg('--alpha'))
    .addOption(
      new Option('--scaling <s>', 'confidence: 1+α·log(1+r/ε) or 1+α·r (default log)').choices([
        'log',
        'linear',
      ]),
    )
    .option('--epsilon <x>', 'ε of log scaling (default 1)', numArg('--epsilon'))
    .option('--seed <n>', 'seed of the initial factors (default 42)', intArg('--seed', 0, 2 ** 31))
    .option('--no-activate', 'write "activate": false into release.json')
    .option('--no-progress', 'plain progress lines, no bar')
    .option('--json', 'print the training summary as JSON')
    .action(async (input: string | undefined, o) => {
      const lastfm = Boolean(o.lastfm);
      const inputPath = input
        ? resolve(io.cwd, input)
        : lastfm
          ? join(LASTFM_DIR, 'user_artists.dat')
          : undefined;
      if (!inputPath)
        throw new CliError(
          'no input file',
          'pass a `user item count` file, or --lastfm for the example data',
        );
      if (!existsSync(inputPath)) throw new CliError(`${input} does not exist`, 'check the input path');
      const out = resolve(io.cwd, o.out);
      const demo = lastfm ? LASTFM_DEMO_OPTIONS : {};
      let progress: Progress | undefined;
      const iterations: number = o.iterations ?? ALS_DEFAULTS.iterations;
      const onProgress = (p: TrainAlsProgress) => {
        if (p.phase === 'read') {
          io.err(`Read ${p.rows} rows: ${p.users} users × ${p.items} items`);
          progress = new Progress(io, {
            label: 'train',
            total: Math.max(1, iterations),
            unit: 'items',
            bar: o.progress,
            plainEveryMs: 0,
          });
        } else if (p.phase === 'train') {
          const loss = p.loss !== undefined ? ` loss ${p.loss.toExponential(4)}` : '';
          progress?.update(p.iteration, `iteration ${p.iteration}/${p.iterations}${loss}`);
        } else if (progress) {
          progress.done(
            `Trained ${iterations} iterations in ${duration(progress.elapsedMs)}; writing ${p.file}…`,
          );
          progress = undefined;
        }
      };
      const t0 = Date.now();
      let summary: AlsReleaseSummary;
      try {
        summary = await trainAlsCommand(
          {
            input: inputPath,
            out,
            factors: o.factors ?? demo.factors,
            iterations: o.iterations,
            regularization: o.regularization,
            alpha: o.alpha,
            scaling: o.scaling,
            epsilon: o.epsilon,
            seed: o.seed ?? demo.seed,
            items: o.items ?? (lastfm ? 'artists' : undefined),
            names: o.names ? resolve(io.cwd, o.names) : lastfm ? join(LASTFM_DIR, 'artists.dat') : undefined,
            tags: o.tags ? resolve(io.cwd, o.tags) : lastfm ? join(LASTFM_DIR, 'artist_tags.tsv') : undefined,
            activate: o.activate,
          },
          onProgress,
        );
      } catch (err) {
        progress?.abort();
        if (err instanceof RangeError) throw new CliError(err.message, 'see `vicinity train-als --help`');
        if (err instanceof Error && /:\d+: /.test(err.message))
          throw new CliError(err.message, 'fix that line of the input');
        throw err;
      }
      progress?.done();
      if (o.json) return io.out(JSON.stringify(summary, null, 2));
      const s = summary.options;
      io.out(
        `Trained ALS (factors=${s.factors}, iterations=${s.iterations}, regularization=${s.regularization}, ` +
          `${s.scaling} confidence α=${s.alpha}, seed=${s.seed}) on ${summary.users} users × ${summary.items} ${summary.itemsCollection} ` +
          `(${summary.interactions} interactions) in ${duration(summary.trainMs)}; total ${duration(Date.now() - t0)}`,
      );
      io.out(
        table(
          ['FILE', 'ROWS', 'SIZE'],
          summary.files.map((f) => [f.name, f.rows ?? '-', bytes(f.bytes)]),
        ),
      );
      const shown = shownPath(io.cwd, out);
      io.out(`Release folder: ${shown}\nPublish it:     vicinity publish <space> ${shown}`);
    });
};
