// cli/: the `vicinity` command — one module per command in commands/, assembled here.
// It may import functions/ (core, adapters), examples/als and local/info.ts (the local.json shape); local/ never imports cli/.
/**
 * `vicinity`: the command line for publishing releases, switching versions and looking at
 * neighbours. `bin.mjs` runs it through tsx; tests call `runCli` in-process.
 */
import { Command, CommanderError } from 'commander';
import { registerActivate } from './commands/activate';
import type { CommandEnv, RegisterCommand } from './commands/command';
import { registerDeleteSpace } from './commands/delete-space';
import { registerDiff } from './commands/diff';
import { registerErase } from './commands/erase';
import { registerHistory } from './commands/history';
import { registerPublish } from './commands/publish';
import { registerQuery } from './commands/query';
import { registerRollback } from './commands/rollback';
import { registerSettings } from './commands/settings';
import { registerSimilar } from './commands/similar';
import { registerSpaces } from './commands/spaces';
import { registerStatus } from './commands/status';
import { registerTrainAls } from './commands/train-als';
import { registerValidate } from './commands/validate';
import { registerVersions } from './commands/versions';
import { CliContext, type GlobalOptions } from './context';
import { asCliError, CliError, type Io, printError, processIo } from './io';

/** In the order `--help` lists them. */
const COMMANDS: readonly RegisterCommand[] = [
  registerPublish,
  registerSpaces,
  registerStatus,
  registerVersions,
  registerHistory,
  registerActivate,
  registerRollback,
  registerSimilar,
  registerQuery,
  registerDiff,
  registerErase,
  registerDeleteSpace,
  registerSettings,
  registerValidate,
  registerTrainAls,
];

function buildProgram(env: CommandEnv): Command {
  const { io } = env;
  const program = new Command('vicinity')
    .description(
      'Publish embedding releases to Vicinity, switch versions and look at neighbours.\n' +
        'Talks to the local stack (`npm start`, VICINITY_HOME/local.json) unless --bucket/--table/--profile/--api-url say otherwise.',
    )
    .option('--home <dir>', 'the local stack home holding local.json (default $VICINITY_HOME or ./.vicinity)')
    .option('--api-url <url>', 'the HTTP API (AWS: the stack output ApiUrl; admin calls are SigV4-signed)')
    .option('--bucket <name>', 'AWS: the release bucket')
    .option('--table <name>', 'AWS: the DynamoDB table (status, versions without --api-url)')
    .option('--region <region>', 'AWS region (default $AWS_REGION)')
    .option('--profile <name>', 'AWS profile (standard credential chain otherwise)')
    .showHelpAfterError('hint: add --help for usage')
    .configureOutput({
      writeOut: (s) => io.out(s.replace(/\n$/, '')),
      writeErr: (s) => io.err(s.replace(/\n$/, '')),
      outputError: (s, write) => write(`vicinity: ${s.replace(/^error: /, '')}`),
    })
    .exitOverride();
  for (const register of COMMANDS) register(program, env);
  return program;
}

/** Runs one command line (without the `node bin` prefix); resolves to the exit code. */
export async function runCli(argv: string[], io: Io = processIo()): Promise<number> {
  let ctx: CliContext | undefined;
  let globals: GlobalOptions = {};
  const program = buildProgram({
    io,
    context: () => {
      ctx ??= new CliContext(globals, io.env, io.cwd);
      return ctx;
    },
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
