/** The pointer switch behind `activate` and `rollback`: compare-and-swap on the generation the CLI read (or was given). */
import type { Command } from 'commander';
import { assertSpace, assertVersionArg, intArg } from './args';
import { type CliContext, type PointerView, ServiceProblem } from './context';
import { when } from './format';
import { CliError, type Io } from './io';

export interface SwitchOptions {
  force: boolean;
  expectedGeneration?: number;
  json: boolean;
}

/** The options both switches take. */
export function switchOptions(c: Command): Command {
  return c
    .option('--force', 'switch even if collection dims or metric differ')
    .option(
      '--expected-generation <n>',
      'the generation you saw (default: read it now); a different one is a conflict',
      intArg('--expected-generation', 0, Number.MAX_SAFE_INTEGER),
    )
    .option('--json', 'JSON output');
}

export function switchOptionsOf(o: {
  force?: boolean;
  expectedGeneration?: number;
  json?: boolean;
}): SwitchOptions {
  return { force: Boolean(o.force), expectedGeneration: o.expectedGeneration, json: Boolean(o.json) };
}

/** activate (version given) or rollback (version undefined); conflicts and refusals become one line and a hint. */
export async function switchPointer(
  ctx: CliContext,
  io: Io,
  space: string,
  version: string | undefined,
  opts: SwitchOptions,
): Promise<void> {
  assertSpace(space);
  if (version !== undefined) assertVersionArg(version);
  const what = version === undefined ? 'rollback' : 'activate';
  ctx.requireAdminApi(what);
  const before = opts.expectedGeneration === undefined ? (await ctx.space(space, 1)).pointer : undefined;
  const expected = opts.expectedGeneration ?? (before as PointerView).generation;
  let after: PointerView;
  try {
    after = await ctx.switchPointer(space, version, expected, opts.force);
  } catch (err) {
    if (!(err instanceof ServiceProblem)) throw err;
    const retry =
      version === undefined ? `vicinity rollback ${space}` : `vicinity activate ${space} ${version}`;
    if (err.status === 409) {
      const p = err.pointer;
      throw new CliError(
        p
          ? `conflict: ${space} is at generation ${p.generation} (active ${p.version ?? 'none'}, moved by ${p.changedBy ?? '-'} at ${when(p.changedAt)}), not ${expected} — nothing was changed`
          : `conflict: ${err.message}`,
        `someone switched it first; check \`vicinity status ${space}\`, then run \`${retry}\` again if you still want it`,
      );
    }
    if (err.status === 422) {
      const incompatible = Array.isArray(err.body.incompatibilities);
      throw new CliError(
        `${what} refused: ${err.message.replace(/\. Set "force": true to activate anyway$/, '')}`,
        incompatible
          ? `clients holding vectors of the active shape would break; if they can cope, run \`${retry} --force\``
          : version === undefined
            ? `\`vicinity history ${space}\` shows how the pointer moved`
            : `only READY versions can be activated: \`vicinity versions ${space}\``,
      );
    }
    throw err;
  }
  if (opts.json) return io.out(JSON.stringify({ space, pointer: after }, null, 2));
  if (before && after.generation === before.generation) {
    io.out(`${space}: ${after.version} is already active (generation ${after.generation}); nothing changed`);
    return;
  }
  io.out(
    `${space}: ${after.previous ?? 'none'} → ${after.version} (generation ${after.generation}, by ${after.changedBy ?? 'cli'} at ${when(after.changedAt)})`,
  );
  if (what === 'activate') io.out(`undo with: vicinity rollback ${space}`);
}
