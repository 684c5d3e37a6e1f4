/** The read and switch commands: spaces, status, versions, history, activate, rollback, similar, query, diff. */

import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import type { DiffAnswer, Labelled } from '../functions/core/diff';
import { labelOf } from '../functions/core/diff';
import { isValidName, parseVersion } from '../functions/core/names';
import type { CliContext, PointerView, VersionSummary } from './context';
import { ServiceProblem } from './context';
import { clip, duration, num, reportTable, table, when } from './format';
import { CliError, type Io } from './io';

const enc = encodeURIComponent;

function assertSpace(space: string): void {
  if (!isValidName(space))
    throw new CliError(
      `invalid space name ${JSON.stringify(space)}`,
      'space names use a-z, 0-9, - and _ (e.g. music)',
    );
}

function assertVersionArg(v: string): void {
  if (parseVersion(v) === undefined)
    throw new CliError(
      `invalid version ${JSON.stringify(v)}`,
      'versions look like v1, v12: see `vicinity versions <space>`',
    );
}

function shapes(v: Pick<VersionSummary, 'collections'>): string {
  const c = Object.entries(v.collections ?? {});
  if (c.length === 0) return '-';
  return c.map(([name, r]) => `${name} ${r.count}×${r.dims} ${r.metric}`).join(', ');
}

function versionRows(versions: VersionSummary[], pointer: PointerView | undefined) {
  return versions.map((v) => [
    v.version === pointer?.version ? '* active' : v.version === pointer?.previous ? '  previous' : '',
    v.version,
    v.status,
    v.release,
    when(v.createdAt),
    v.buildMs !== undefined ? duration(v.buildMs) : '-',
    v.status === 'FAILED' ? clip(v.reason ?? '', 70) : shapes(v),
  ]);
}

const VERSION_HEADER = ['', 'VERSION', 'STATUS', 'RELEASE', 'CREATED', 'BUILD', 'COLLECTIONS / REASON'];

export async function spacesCommand(ctx: CliContext, io: Io, json: boolean): Promise<void> {
  const spaces = await ctx.spaces();
  if (json) return io.out(JSON.stringify({ spaces }, null, 2));
  if (spaces.length === 0) return io.out('No spaces yet: publish one with `vicinity publish <space> <dir>`');
  io.out(
    table(
      ['SPACE', 'ACTIVE', 'GENERATION'],
      spaces.map((s) => [s.space, s.active?.version ?? '-', s.active?.generation ?? 0]),
    ),
  );
}

export async function statusCommand(ctx: CliContext, io: Io, space: string, json: boolean): Promise<void> {
  assertSpace(space);
  const { pointer, versions } = await ctx.space(space, 10);
  const active = pointer.version ? await ctx.version(space, pointer.version) : undefined;
  if (json) return io.out(JSON.stringify({ space, pointer, active: active ?? null, versions }, null, 2));
  if (pointer.version) {
    io.out(
      `Space ${space}: active ${pointer.version} (release ${active?.release ?? '?'}), generation ${pointer.generation}, ` +
        `previous ${pointer.previous ?? 'none'}, changed by ${pointer.changedBy ?? '-'} at ${when(pointer.changedAt)}`,
    );
  } else {
    io.out(`Space ${space}: no active version yet`);
  }
  const building = versions.filter((v) => v.status === 'BUILDING');
  if (building.length)
    io.out(`Building: ${building.map((v) => `${v.version} (release ${v.release})`).join(', ')}`);
  if (active?.collections) {
    io.out('');
    io.out(reportTable(active));
  }
  io.out('');
  io.out(table(VERSION_HEADER, versionRows(versions, pointer)));
}

export async function versionsCommand(
  ctx: CliContext,
  io: Io,
  space: string,
  opts: { json: boolean; limit: number; release?: string },
): Promise<void> {
  assertSpace(space);
  const [{ pointer }, all] = await Promise.all([ctx.space(space, 1), ctx.versions(space, opts.limit)]);
  const versions = opts.release ? all.filter((v) => v.release === opts.release) : all;
  if (opts.json) return io.out(JSON.stringify({ space, pointer, versions }, null, 2));
  if (versions.length === 0) {
    return io.out(
      opts.release
        ? `No version of release ${opts.release} among the newest ${opts.limit}`
        : `No versions of ${space}`,
    );
  }
  io.out(table(VERSION_HEADER, versionRows(versions, pointer)));
}

export async function historyCommand(ctx: CliContext, io: Io, space: string, json: boolean): Promise<void> {
  assertSpace(space);
  const history = await ctx.history(space);
  if (json) return io.out(JSON.stringify({ space, history }, null, 2));
  if (history.length === 0) return io.out(`${space}: the pointer never moved`);
  io.out(
    table(
      ['GENERATION', 'FROM', 'TO', 'BY', 'AT'],
      history.map((h) => [h.generation, h.from ?? '-', h.to, h.by, when(h.at)]),
    ),
  );
}

/** activate (version given) or rollback, guarded by the generation the CLI read (or was given). */
export async function switchCommand(
  ctx: CliContext,
  io: Io,
  space: string,
  version: string | undefined,
  opts: { force: boolean; expectedGeneration?: number; json: boolean },
): Promise<void> {
  assertSpace(space);
  if (version !== undefined) assertVersionArg(version);
  const what = version === undefined ? 'rollback' : 'activate';
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

interface Result {
  id: string;
  score: number;
  distance: number;
  metadata?: Record<string, unknown> | null;
}

function cell(v: unknown): string {
  if (v === undefined || v === null) return '-';
  if (Array.isArray(v)) return clip(v.map(String).join(', '), 48);
  if (typeof v === 'object') return clip(JSON.stringify(v), 48);
  return clip(String(v), 48);
}

/** The results as a table: rank, id, score and the chosen metadata fields (default: a name-like field). */
export function resultsTable(results: Result[], fields: string[] | undefined): string {
  const chosen =
    fields ??
    (() => {
      const f = ['name', 'title', 'label'].find((k) => results.some((r) => r.metadata && k in r.metadata));
      return f ? [f] : [];
    })();
  return table(
    ['#', 'ID', 'SCORE', ...chosen.map((f) => f.toUpperCase())],
    results.map((r, i) => [i + 1, r.id, r.score.toFixed(4), ...chosen.map((f) => cell(r.metadata?.[f]))]),
  );
}

export interface SearchOptions {
  k: number;
  target?: string;
  excludeSeen?: boolean;
  filter?: string;
  version?: string;
  fields?: string[];
  json: boolean;
}

function checkFilter(filter: string | undefined): void {
  if (filter === undefined) return;
  try {
    JSON.parse(filter);
  } catch {
    throw new CliError('--filter is not valid JSON', `e.g. --filter '{"genre":"rock","year":{"gte":1990}}'`);
  }
}

export async function similarCommand(
  ctx: CliContext,
  io: Io,
  space: string,
  collection: string,
  id: string,
  o: SearchOptions,
): Promise<void> {
  assertSpace(space);
  checkFilter(o.filter);
  const q = new URLSearchParams({ k: String(o.k) });
  if (o.target) q.set('target', o.target);
  if (o.excludeSeen) q.set('excludeSeen', 'true');
  if (o.filter) q.set('filter', o.filter);
  if (o.version) q.set('version', o.version);
  const base = `/v1/spaces/${enc(space)}/collections/${enc(collection)}/items/${enc(id)}`;
  const answer = await ctx.get<{ version: string; target: string; results: Result[] }>(
    `${base}/similar?${q}`,
  );
  if (o.json) return io.out(JSON.stringify(answer, null, 2));
  const item = await ctx
    .get<{ metadata: Record<string, unknown> | null }>(`${base}?version=${answer.version}`)
    .catch(() => undefined);
  const label = labelOf(item?.metadata);
  io.out(
    `${space} ${answer.version} · ${collection}/${id}${label ? ` "${label}"` : ''} → ${answer.target}` +
      `${o.excludeSeen ? ' (seen items left out)' : ''}: ${answer.results.length} results`,
  );
  io.out(resultsTable(answer.results, o.fields));
}

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

export async function queryCommand(
  ctx: CliContext,
  io: Io,
  space: string,
  collection: string,
  o: SearchOptions & { vector?: string; vectorFile?: string },
): Promise<void> {
  assertSpace(space);
  checkFilter(o.filter);
  if ((o.vector === undefined) === (o.vectorFile === undefined))
    throw new CliError(
      'give exactly one of --vector and --vector-file',
      'e.g. --vector 0.1,0.2,0.3 or --vector-file q.json',
    );
  let vector: number[];
  if (o.vector !== undefined) vector = parseVectorText(o.vector, '--vector');
  else {
    const file = o.vectorFile as string;
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
}

const pct = (x: number) => `${Math.round(x * 100)}%`;
const names = (l: Labelled[], n = 3) =>
  l.length === 0
    ? '-'
    : `${l
        .slice(0, n)
        .map((x) => x.label ?? x.id)
        .join(', ')}${l.length > n ? ` +${l.length - n}` : ''}`;

export function printDiff(io: Io, d: DiffAnswer): void {
  io.out(
    `${d.space}: ${d.from} → ${d.to}, overlap@${d.k} of neighbour lists over up to ${d.sample} items per collection`,
  );
  io.out('');
  io.out(
    table(
      ['COLLECTION', 'FROM', 'TO', 'IN BOTH', 'SAMPLED', 'MEAN', 'MEDIAN', 'P10', 'SAME', '<HALF'],
      d.collections.map((c) => [
        c.target ? `${c.collection}→${c.target}` : c.collection,
        c.from ? `${c.from.count}×${c.from.dims}` : '-',
        c.to ? `${c.to.count}×${c.to.dims}` : '-',
        c.inBoth,
        c.sampled,
        num(c.meanOverlap, 3),
        num(c.medianOverlap, 2),
        num(c.p10Overlap, 2),
        pct(c.unchanged),
        pct(c.mostlyChanged),
      ]),
    ),
  );
  for (const c of d.collections) {
    io.out('');
    const max = Math.max(1, ...c.histogram.map((h) => h.items));
    io.out(`${c.target ? `${c.collection}→${c.target}` : c.collection}: overlap@${d.k} distribution`);
    for (const h of c.histogram) {
      if (h.items === 0) continue;
      io.out(
        `  ${h.overlap.toFixed(1)}  ${'█'.repeat(Math.max(1, Math.round((30 * h.items) / max)))} ${h.items}`,
      );
    }
    if (c.mostChanged.length) {
      const named = c.mostChanged.some((m) => m.label !== undefined);
      io.out('Most changed:');
      io.out(
        table(
          ['ID', ...(named ? ['NAME'] : []), 'OVERLAP', 'LOST', 'GAINED'],
          c.mostChanged.map((m) => [
            m.id,
            ...(named ? [clip(m.label ?? '-', 28)] : []),
            m.overlap.toFixed(2),
            clip(names(m.removed), 48),
            clip(names(m.added), 48),
          ]),
        ),
      );
    }
  }
  io.out('');
  io.out('Summary:');
  for (const line of d.summary.split('\n')) io.out(`  ${line}`);
  if (!d.compatible) io.out(`  (activate with --force if clients can cope with the new shape)`);
}

export async function diffCommand(
  ctx: CliContext,
  io: Io,
  space: string,
  from: string,
  to: string,
  o: { sample: number; k: number; top: number; collection?: string; target?: string; json: boolean },
): Promise<void> {
  assertSpace(space);
  assertVersionArg(from);
  assertVersionArg(to);
  const q = new URLSearchParams({ from, to, sample: String(o.sample), k: String(o.k), top: String(o.top) });
  if (o.collection) q.set('collection', o.collection);
  if (o.target) q.set('target', o.target);
  if (io.isTTY) io.err(`comparing ${from} and ${to} (loads both versions)…`);
  const answer = await ctx.get<DiffAnswer>(`/v1/spaces/${enc(space)}/diff?${q}`);
  if (o.json) return io.out(JSON.stringify(answer, null, 2));
  printDiff(io, answer);
}
