/**
 * `vicinity`: the command line for publishing releases, switching versions and looking at
 * neighbours. `bin.mjs` runs it through tsx; tests call `runCli` in-process.
 */
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { DIFF_DEFAULTS, DIFF_LIMITS } from '../functions/core/diff';
import { ALS_DEFAULTS } from './als';
import {
  diffCommand,
  historyCommand,
  queryCommand,
  similarCommand,
  spacesCommand,
  statusCommand,
  switchCommand,
  versionsCommand,
} from './commands';
import { CliContext, type GlobalOptions } from './context';
import { bytes, duration, shownPath, table } from './format';
import { asCliError, CliError, type Io, printError, processIo } from './io';
import { Progress } from './progress';
import type { AlsReleaseSummary, TrainAlsProgress } from './train-als';

/** The build's default longest line (VICINITY_MAX_LINE_BYTES). */
const MAX_LINE_BYTES = 1 << 20;

/** examples/lastfm in this repository. */
export const LASTFM_DIR = fileURLToPath(new URL('../examples/lastfm', import.meta.url));

function intArg(name: string, min: number, max: number) {
  return (raw: string): number => {
    const n = Number(raw);
    if (!/^-?\d+$/.test(raw.trim()) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be an integer ${min}–${max}`);
    return n;
  };
}

function numArg(name: string) {
  return (raw: string): number => {
    const n = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(n)) throw new InvalidArgumentError(`${name} must be a number`);
    return n;
  };
}

const list = (raw: string) =>
  raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function buildProgram(io: Io, context: () => CliContext): Command {
  const program = new Command('vicinity')
    .description(
      'Publish embedding releases to Vicinity, switch versions and look at neighbours.\n' +
        'Talks to the local stack (`npm start`, VICINITY_HOME/local.json) unless --bucket/--table/--profile/--api-url say otherwise.',
    )
    .option('--home <dir>', 'the local stack home holding local.json (default $VICINITY_HOME or ./.vicinity)')
    .option('--api-url <url>', 'the HTTP API (AWS: the stack output ApiUrl)')
    .option('--bucket <name>', 'AWS: the release bucket')
    .option('--table <name>', 'AWS: the DynamoDB table (status, versions, activate, rollback)')
    .option('--region <region>', 'AWS region (default $AWS_REGION)')
    .option('--profile <name>', 'AWS profile (standard credential chain otherwise)')
    .showHelpAfterError('hint: add --help for usage')
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, '')),
      writeErr: (s) => io.err(s.replace(/\n$/, '')),
      outputError: (s, write) => write(`vicinity: ${s.replace(/^error: /, '')}`),
    })
    .exitOverride();

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
      const { publish } = await import('./publish');
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

  program
    .command('spaces')
    .description('list the spaces and their active versions')
    .option('--json', 'JSON output')
    .action(async (o) => spacesCommand(context(), io, Boolean(o.json)));

  program
    .command('status')
    .description(
      'the pointer (active, previous, who moved it) and the newest versions with their release names',
    )
    .argument('<space>')
    .option('--json', 'JSON output')
    .action(async (space: string, o) => statusCommand(context(), io, space, Boolean(o.json)));

  program
    .command('versions')
    .description('the versions of a space, newest first, with release names and build results')
    .argument('<space>')
    .option('--limit <n>', 'how many', intArg('--limit', 1, 100), 20)
    .option('--release <name>', 'only versions of this release')
    .option('--json', 'JSON output')
    .action(async (space: string, o) =>
      versionsCommand(context(), io, space, { json: Boolean(o.json), limit: o.limit, release: o.release }),
    );

  program
    .command('history')
    .description('every switch of the pointer: generation, from, to, by, at')
    .argument('<space>')
    .option('--json', 'JSON output')
    .action(async (space: string, o) => historyCommand(context(), io, space, Boolean(o.json)));

  const switchOptions = (c: Command) =>
    c
      .option('--force', 'switch even if collection dims or metric differ')
      .option(
        '--expected-generation <n>',
        'the generation you saw (default: read it now); a different one is a conflict',
        intArg('--expected-generation', 0, Number.MAX_SAFE_INTEGER),
      )
      .option('--json', 'JSON output');
  switchOptions(
    program
      .command('activate')
      .description('point the space at a READY version (compare-and-swap on the generation)')
      .argument('<space>')
      .argument('<version>', 'e.g. v2'),
  ).action(async (space: string, version: string, o) =>
    switchCommand(context(), io, space, version, {
      force: Boolean(o.force),
      expectedGeneration: o.expectedGeneration,
      json: Boolean(o.json),
    }),
  );
  switchOptions(
    program
      .command('rollback')
      .description('switch back to the previous version (a second rollback goes forward again)')
      .argument('<space>'),
  ).action(async (space: string, o) =>
    switchCommand(context(), io, space, undefined, {
      force: Boolean(o.force),
      expectedGeneration: o.expectedGeneration,
      json: Boolean(o.json),
    }),
  );

  const searchOptions = (c: Command) =>
    c
      .option('-k, --k <n>', 'how many results', intArg('-k', 1, 1000), 10)
      .option('--filter <json>', 'metadata filter, e.g. \'{"genre":"rock"}\'')
      .option('--version <v>', 'ask a pinned READY version instead of the active one')
      .option('--field <names>', 'metadata fields to show (comma-separated; default a name-like field)', list)
      .option('--json', 'the raw answer');
  searchOptions(
    program
      .command('similar')
      .description(
        "an item's neighbours, e.g. `similar music artists 154` or `similar music users 2 --target artists --exclude-seen`",
      )
      .argument('<space>')
      .argument('<collection>')
      .argument('<id>')
      .option('--target <collection>', 'search another collection of the same version (recommendations)')
      .option('--exclude-seen', "leave out what the item's seenField lists"),
  ).action(async (space: string, collection: string, id: string, o) =>
    similarCommand(context(), io, space, collection, id, {
      k: o.k,
      target: o.target,
      excludeSeen: Boolean(o.excludeSeen),
      filter: o.filter,
      version: o.version,
      fields: o.field,
      json: Boolean(o.json),
    }),
  );
  searchOptions(
    program
      .command('query')
      .description('the nearest items to a vector')
      .argument('<space>')
      .argument('<collection>')
      .option('--vector <numbers>', 'the vector: 0.1,0.2,… or [0.1, 0.2, …]')
      .option('--vector-file <file>', 'a file holding the vector (JSON array or numbers); - for stdin'),
  ).action(async (space: string, collection: string, o) =>
    queryCommand(context(), io, space, collection, {
      k: o.k,
      filter: o.filter,
      version: o.version,
      fields: o.field,
      json: Boolean(o.json),
      vector: o.vector,
      vectorFile: o.vectorFile,
    }),
  );

  program
    .command('diff')
    .description(
      'how much two versions disagree: overlap@k of neighbour lists over a sample of items in both',
    )
    .argument('<space>')
    .argument('<from>', 'e.g. the active version, v1')
    .argument('<to>', 'the candidate, e.g. v2')
    .option(
      '--sample <n>',
      'items sampled per collection',
      intArg('--sample', 1, DIFF_LIMITS.sample),
      DIFF_DEFAULTS.sample,
    )
    .option('-k, --k <n>', 'neighbours compared per item', intArg('-k', 1, DIFF_LIMITS.k), DIFF_DEFAULTS.k)
    .option('--top <n>', 'most-changed items listed', intArg('--top', 0, DIFF_LIMITS.top), DIFF_DEFAULTS.top)
    .option('--collection <name>', 'only this collection')
    .option(
      '--target <name>',
      'compare collection → target neighbours (e.g. users → artists recommendations)',
    )
    .option('--json', 'the raw answer')
    .action(async (space: string, from: string, to: string, o) =>
      diffCommand(context(), io, space, from, to, {
        sample: o.sample,
        k: o.k,
        top: o.top,
        collection: o.collection,
        target: o.target,
        json: Boolean(o.json),
      }),
    );

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
      const { printValidation, validateRelease } = await import('./validate');
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
      const { LASTFM_DEMO_OPTIONS, trainAlsCommand } = await import('./train-als');
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

  return program;
}

/** Runs one command line (without the `node bin` prefix); resolves to the exit code. */
export async function runCli(argv: string[], io: Io = processIo()): Promise<number> {
  let ctx: CliContext | undefined;
  let globals: GlobalOptions = {};
  const program = buildProgram(io, () => {
    ctx ??= new CliContext(globals, io.env, io.cwd);
    return ctx;
  });
  program.hook('preAction', (_root, action) => {
    globals = action.optsWithGlobals() as GlobalOptions;
  });
  try {
    if (argv.length === 0) {
      program.outputHelp();
      return 0;
    }
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode;
    const e = err instanceof CliError ? err : (ctx?.fail(err) ?? asCliError(err));
    printError(io, e);
    if (io.env.VICINITY_DEBUG && err instanceof Error && err.stack) io.err(err.stack);
    return e.exitCode;
  } finally {
    ctx?.close();
  }
}
