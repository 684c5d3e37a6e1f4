/** Search answers as the terminal shows them, and the options `similar` and `query` share. */
import type { Command } from 'commander';
import { intArg, list } from './args';
import { clip, table } from './format';
import { CliError } from './io';

export interface Result {
  id: string;
  score: number;
  distance: number;
  metadata?: Record<string, unknown> | null;
}

export interface SearchOptions {
  k: number;
  filter?: string;
  version?: string;
  fields?: string[];
  json: boolean;
}

export function searchOptions(c: Command): Command {
  return c
    .option('-k, --k <n>', 'how many results', intArg('-k', 1, 1000), 10)
    .option('--filter <json>', 'metadata filter, e.g. \'{"genre":"rock"}\'')
    .option('--version <v>', 'ask a pinned READY version instead of the active one')
    .option('--field <names>', 'metadata fields to show (comma-separated; default a name-like field)', list)
    .option('--json', 'the raw answer');
}

export function searchOptionsOf(o: {
  k: number;
  filter?: string;
  version?: string;
  field?: string[];
  json?: boolean;
}): SearchOptions {
  return { k: o.k, filter: o.filter, version: o.version, fields: o.field, json: Boolean(o.json) };
}

export function checkFilter(filter: string | undefined): void {
  if (filter === undefined) return;
  try {
    JSON.parse(filter);
  } catch {
    throw new CliError('--filter is not valid JSON', `e.g. --filter '{"genre":"rock","year":{"gte":1990}}'`);
  }
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
