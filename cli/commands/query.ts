/** `vicinity query`: the nearest items to a vector given inline, in a file or on stdin. */
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { assertSpace, enc } from '../args';
import { CliError } from '../io';
import { checkFilter, type Result, resultsTable, searchOptions, searchOptionsOf } from '../results';
import type { RegisterCommand } from './command';

/** A vector from text: a JSON array, or numbers separated by commas or white space. */
export function parseVectorText(text: string, where: string): number[] {
  const t = text.trim();
  let values: unknown;
  if (t.startsWith('[')) {
    try {
      values = JSON.parse(t);
    } catch {
      throw new CliError(
        `${where} is not a valid JSON array`,
        'give numbers like [0.1, 0.2, …] or 0.1,0.2,…',
      );
    }
  } else {
    values = t
      .split(/[\s,]+/)
      .filter(Boolean)
      .map(Number);
  }
  if (!Array.isArray(values) || values.length === 0)
    throw new CliError(`${where} holds no numbers`, 'give numbers like [0.1, 0.2, …] or 0.1,0.2,…');
  const bad = values.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v));
  if (bad >= 0) throw new CliError(`${where}: value ${bad + 1} is not a finite number`, 'check the vector');
  return values as number[];
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export const registerQuery: RegisterCommand = (program, { io, context }) => {
  searchOptions(
    program
      .command('query')
      .description('the nearest items to a vector')
      .argument('<space>')
      .argument('<collection>')
      .option('--vector <numbers>', 'the vector: 0.1,0.2,… or [0.1, 0.2, …]')
      .option('--vector-file <file>', 'a file holding the vector (JSON array or numbers); - for stdin'),
  ).action(async (space: string, collection: string, opts) => {
    const o = searchOptionsOf(opts);
    const ctx = context();
    assertSpace(space);
    checkFilter(o.filter);
    const { vector: inline, vectorFile } = opts as { vector?: string; vectorFile?: string };
    if ((inline === undefined) === (vectorFile === undefined))
      throw new CliError(
        'give exactly one of --vector and --vector-file',
        'e.g. --vector 0.1,0.2,0.3 or --vector-file q.json',
      );
    let vector: number[];
    if (inline !== undefined) vector = parseVectorText(inline, '--vector');
    else {
      const file = vectorFile as string;
      const text =
        file === '-'
          ? await readStdin()
          : await readFile(resolve(io.cwd, file), 'utf8').catch(() => {
              throw new CliError(`cannot read ${file}`, 'check the path given to --vector-file');
            });
      vector = parseVectorText(text, file === '-' ? 'stdin' : file);
    }
    const body: Record<string, unknown> = { vector, k: o.k };
    if (o.filter) body.filter = JSON.parse(o.filter);
    if (o.version) body.version = o.version;
    const answer = (
      await ctx.request('POST', `/v1/spaces/${enc(space)}/collections/${enc(collection)}/query`, body)
    ).body as { version: string; results: Result[] };
    if (o.json) return io.out(JSON.stringify(answer, null, 2));
    io.out(
      `${space} ${answer.version} · nearest to a ${vector.length}-d vector in ${collection}: ${answer.results.length} results`,
    );
    io.out(resultsTable(answer.results, o.fields));
  });
};
