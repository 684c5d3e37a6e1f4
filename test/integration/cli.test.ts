/**
 * The `vicinity` CLI end to end against a whole local stack (s3rver + dynalite + the HTTP server):
 * the commands run in-process through runCli, reading the stack's local.json as a user's shell would.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferIo } from '../../cli/io';
import { runCli } from '../../cli/main';
import { signedHeaders } from '../../cli/sigv4';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';

const DIMS = 16;
const ITEMS = 400;
const USERS = 60;
/** Items whose vectors release B moves into another cluster: exactly these must top the diff. */
const MOVED = Array.from({ length: 10 }, (_, i) => `i${i * 37 + 3}`);

interface Run {
  code: number;
  out: string;
  err: string;
}

function releaseFiles(moved: boolean) {
  const items = clusteredVectors(ITEMS, DIMS, 8, 11);
  const users = clusteredVectors(USERS, DIMS, 8, 12);
  const itemIds = Array.from({ length: ITEMS }, (_, i) => `i${i}`);
  const userIds = Array.from({ length: USERS }, (_, i) => `u${i}`);
  if (moved) {
    const used = new Set<number>();
    for (const id of MOVED) {
      const row = Number(id.slice(1));
      // Copy the vector of a distinct item of another cluster: the moved item's neighbourhood is all new,
      // and every other item loses or gains at most one neighbour.
      let other = (row + ITEMS / 2) % ITEMS;
      while (items.cluster[other] === items.cluster[row] || used.has(other) || MOVED.includes(`i${other}`))
        other = (other + 1) % ITEMS;
      used.add(other);
      items.vectors.copyWithin(row * DIMS, other * DIMS, (other + 1) * DIMS);
    }
  }
  return {
    'items.jsonl': jsonlRows(itemIds, items.vectors, DIMS, (i) => ({
      name: `Item ${i}`,
      cluster: items.cluster[i],
    })),
    'users.jsonl': jsonlRows(userIds, users.vectors, DIMS, (i) => ({ seen: [`i${i}`, `i${i + 1}`] })),
    'release.json': JSON.stringify({
      collections: {
        users: { file: 'users.jsonl', metric: 'cosine' },
        items: { file: 'items.jsonl', metric: 'cosine', ef: 200 },
      },
      seenField: 'seen',
    }),
  };
}

/** Sets process variables (the SDK's credential chain reads process.env); returns the undo. */
function withEnv(vars: Record<string, string>): () => void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  Object.assign(process.env, vars);
  return () => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
}

async function writeDir(dir: string, files: Record<string, string>) {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
}

const A = releaseFiles(false);
const B = releaseFiles(true);
const BAD = (() => {
  const bad = releaseFiles(false);
  bad['items.jsonl'] = bad['items.jsonl'].replace(/\n/, '\n{"id":"broken","vector":[1,2]}\n');
  return bad;
})();

/**
 * Every test works in a space of its own, so it runs alone and in any order: `shop(s, 'name')` makes
 * one with release r-a active as v1 (generation 1, by build) and, unless `only: 'a'`, release r-b as
 * READY v2, not activated; `bad: true` adds the FAILED release r-bad after them.
 */
let spaces = 0;
async function shop_(s: TestStack, name: string, opts: { only?: 'a'; bad?: boolean } = {}): Promise<string> {
  const space = `${name}-${++spaces}`;
  const dataOf = (f: Record<string, string>) => ({
    'items.jsonl': f['items.jsonl']!,
    'users.jsonl': f['users.jsonl']!,
  });
  await s.publish(space, 'r-a', dataOf(A), A['release.json']!);
  if (opts.only !== 'a')
    await s.publish(space, 'r-b', dataOf(B), { ...JSON.parse(B['release.json']!), activate: false });
  if (opts.bad) await s.publish(space, 'r-bad', dataOf(BAD), BAD['release.json']!);
  return space;
}

describe('vicinity CLI against the local stack', () => {
  let s: TestStack;
  let work: string;
  const run = async (...argv: string[]): Promise<Run> => {
    const b = bufferIo({ ...process.env, VICINITY_HOME: s.home }, work);
    const code = await runCli(argv, b.io);
    return { code, out: b.stdout(), err: b.stderr() };
  };

  beforeAll(async () => {
    [s, work] = await Promise.all([testStack(), mkdtemp(join(tmpdir(), 'vicinity-cli-'))]);
    await writeDir(join(work, 'a'), A);
    await writeDir(join(work, 'b'), B);
    await writeDir(join(work, 'bad'), BAD);
  });
  afterAll(async () => {
    await s?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('publishes a release folder with plain progress lines, release.json last, and follows the build', async () => {
    const shop = `shop-${++spaces}`;
    const r = await run('publish', shop, 'a', '--release', 'r-a', '--no-progress');
    // Plain lines: no escape sequences, no carriage returns redrawing a bar.
    expect(r.err.includes('\u001b[')).toBe(false);
    expect(r.err.includes('\r')).toBe(false);
    expect(r.err).toMatch(
      new RegExp(`Uploading 2 files \\([\\d.]+ KB\\) to s3://vicinity-local/incoming/${shop}/r-a/`),
    );
    expect(r.err).toMatch(/items\.jsonl\s+[\d.]+ KB\s+uploaded/);
    expect(r.err).toMatch(/users\.jsonl\s+[\d.]+ KB\s+uploaded/);
    // release.json last: written only after every data file reported uploaded.
    // Break seen: cli/publish.ts putting release.json before the data files (log lines as before) — the
    // mtime check below fails.
    const lines = r.err.split('\n');
    const wrote = lines.findIndex((l) => l.includes(`Wrote incoming/${shop}/r-a/release.json`));
    expect(wrote).toBeGreaterThan(-1);
    for (const file of ['items.jsonl', 'users.jsonl']) {
      const uploaded = lines.findIndex((l) => new RegExp(`${file.replace('.', '\\.')}\\s.*uploaded`).test(l));
      expect(uploaded, file).toBeGreaterThan(-1);
      expect(uploaded, `${file} before release.json`).toBeLessThan(wrote);
    }
    // And in the bucket: s3rver keeps each object as a file; release.json's was written last.
    const folder = join(s.home, 's3', s.info.bucket, 'incoming', shop, 'r-a');
    const written = Object.fromEntries(
      await Promise.all(
        (await readdir(folder))
          .filter((f) => f.endsWith('._S3rver_object'))
          .map(
            async (f) => [f.replace('._S3rver_object', ''), (await stat(join(folder, f))).mtimeMs] as const,
          ),
      ),
    );
    expect(Object.keys(written).sort()).toEqual(['items.jsonl', 'release.json', 'users.jsonl']);
    expect(written['release.json']).toBeGreaterThanOrEqual(
      Math.max(written['items.jsonl']!, written['users.jsonl']!),
    );
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^v1 READY \(release r-a, built in/);
    expect(r.out).toMatch(/items\s+400\s+16\s+cosine/);
    expect(r.out).toMatch(new RegExp(`Active: ${shop} now serves v1 \\(generation 1`));
    // Following the build: by the time publish returns the version is READY and serving.
    expect((await s.get(`/v1/spaces/${shop}/versions/v1`)).body.status).toBe('READY');
    expect((await s.get(`/v1/spaces/${shop}`)).body.active).toMatchObject({ version: 'v1', generation: 1 });
  });

  it('publishes a candidate without activating it', async () => {
    const shop = await shop_(s, 'cand', { only: 'a' });
    const r = await run('publish', shop, 'b', '--release', 'r-b', '--no-activate', '--no-progress');
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/^v2 READY/);
    expect(r.out).toMatch(/Not activated \(--no-activate\)\. Serving: v1/);
    expect(r.out).toContain(`vicinity diff ${shop} v1 v2`);
    expect((await s.get(`/v1/spaces/${shop}`)).body.active).toMatchObject({ version: 'v1', generation: 1 });
  });

  it('shows status and versions with release names, as tables and as JSON', async () => {
    const shop = await shop_(s, 'status');
    const status = await run('status', shop);
    expect(status.code).toBe(0);
    expect(status.out).toMatch(
      new RegExp(`Space ${shop}: active v1 \\(release r-a\\), generation 1, previous none, changed by build`),
    );
    expect(status.out).toMatch(/\* active\s+v1\s+READY\s+r-a/);
    expect(status.out).toMatch(/v2\s+READY\s+r-b/);
    const json = await run('versions', shop, '--json');
    const body = JSON.parse(json.out) as { versions: { version: string; release: string }[] };
    expect(body.versions.map((v) => [v.version, v.release])).toEqual([
      ['v2', 'r-b'],
      ['v1', 'r-a'],
    ]);
    const one = await run('versions', shop, '--release', 'r-b', '--json');
    expect((JSON.parse(one.out) as typeof body).versions.map((v) => v.version)).toEqual(['v2']);
  });

  it('prints neighbours as a table with a name column', async () => {
    const shop = await shop_(s, 'similar', { only: 'a' });
    const r = await run('similar', shop, 'items', 'i0', '-k', '3');
    expect(r.code).toBe(0);
    const lines = r.out.trim().split('\n');
    expect(lines[0]).toBe(`${shop} v1 · items/i0 "Item 0" → items: 3 results`);
    expect(lines[1]).toMatch(/#\s+ID\s+SCORE\s+NAME/);
    expect(lines.slice(2)).toHaveLength(3);
    for (const l of lines.slice(2)) expect(l).toMatch(/^\d\s+i\d+\s+0\.\d{4}\s+Item \d+$/);
    const recs = await run('similar', shop, 'users', 'u0', '--target', 'items', '--exclude-seen', '--json');
    const ids = (JSON.parse(recs.out) as { results: { id: string }[] }).results.map((x) => x.id);
    expect(ids).toHaveLength(10);
    expect(ids).not.toContain('i0');
    expect(ids).not.toContain('i1');
  });

  it('queries by a vector given inline or in a file, and lists spaces', async () => {
    const shop = await shop_(s, 'query', { only: 'a' });
    const line = A['items.jsonl']!.split('\n')[7] as string;
    const { id, vector } = JSON.parse(line) as { id: string; vector: number[] };
    const inline = await run('query', shop, 'items', '--vector', vector.join(','), '-k', '2');
    expect(inline.code).toBe(0);
    expect(inline.out).toMatch(new RegExp(`^${shop} v1 · nearest to a 16-d vector in items: 2 results\n`));
    expect(inline.out.split('\n')[2]).toMatch(new RegExp(`^1\\s+${id}\\s`));
    await writeFile(join(work, 'q.json'), JSON.stringify(vector));
    const file = await run('query', shop, 'items', '--vector-file', 'q.json', '--json');
    expect((JSON.parse(file.out) as { results: { id: string }[] }).results[0]?.id).toBe(id);
    const bad = await run('query', shop, 'items', '--vector', '1,2');
    expect(bad.err).toMatch(/^vicinity: vector has 2 values, collection items has 16 dims\nhint: /);
    expect((await run('spaces')).out).toMatch(new RegExp(`(^|\n)${shop}\\s+v1\\s+1(\n|$)`));
  });

  it('diffs two versions: the moved items change most, the rest barely', async () => {
    const shop = await shop_(s, 'diff');
    const r = await run('diff', shop, 'v1', 'v2', '--sample', '1000', '--json');
    expect(r.code).toBe(0);
    const d = JSON.parse(r.out) as {
      from: string;
      to: string;
      compatible: boolean;
      collections: {
        collection: string;
        sampled: number;
        inBoth: number;
        meanOverlap: number;
        unchanged: number;
        mostChanged: { id: string; label: string; overlap: number; removed: unknown[]; added: unknown[] }[];
      }[];
    };
    expect(d).toMatchObject({ from: 'v1', to: 'v2', compatible: true });
    const items = d.collections.find((c) => c.collection === 'items')!;
    const users = d.collections.find((c) => c.collection === 'users')!;
    expect(items).toMatchObject({ sampled: ITEMS, inBoth: ITEMS });
    expect(new Set(items.mostChanged.map((m) => m.id))).toEqual(new Set(MOVED));
    for (const m of items.mostChanged) {
      expect(m.overlap).toBeLessThanOrEqual(0.2);
      expect(m.label).toBe(`Item ${m.id.slice(1)}`);
      expect(m.removed.length).toBeGreaterThanOrEqual(8);
    }
    expect(items.meanOverlap).toBeGreaterThan(0.85);
    // Same user vectors in both: the same neighbours.
    expect(users).toMatchObject({ sampled: USERS, meanOverlap: 1, unchanged: 1, mostChanged: [] });

    const text = await run(
      'diff',
      shop,
      'v1',
      'v2',
      '--collection',
      'items',
      '--sample',
      '1000',
      '--top',
      '3',
    );
    expect(text.out).toContain(`${shop}: v1 → v2`);
    expect(text.out).toMatch(/Most changed:/);
    expect(text.out).toMatch(/items: (small|moderate) change — mean overlap@10/);
  });

  it('refuses an activation against a stale generation, with who moved it and a hint', async () => {
    const shop = await shop_(s, 'stale');
    const r = await run('activate', shop, 'v2', '--expected-generation', '0');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      new RegExp(
        `^vicinity: conflict: ${shop} is at generation 1 \\(active v1, moved by build at [\\d-]+ [\\d:]+Z\\), not 0 — nothing was changed\nhint: .*vicinity status ${shop}`,
      ),
    );
    expect((await s.get(`/v1/spaces/${shop}`)).body.active).toMatchObject({ version: 'v1', generation: 1 });
  });

  it('activates and rolls back with changedBy cli', async () => {
    const shop = await shop_(s, 'switch');
    const a = await run('activate', shop, 'v2');
    expect(a.code).toBe(0);
    expect(a.out).toMatch(new RegExp(`^${shop}: v1 → v2 \\(generation 2, by cli at`));
    const again = await run('activate', shop, 'v2');
    expect(again.out).toMatch(/v2 is already active \(generation 2\); nothing changed/);
    const b = await run('rollback', shop);
    expect(b.code).toBe(0);
    expect(b.out).toMatch(new RegExp(`^${shop}: v2 → v1 \\(generation 3, by cli at`));
    const history = (await s.get(`/v1/spaces/${shop}/history`)).body.history as { to: string; by: string }[];
    expect(history.slice(0, 2)).toMatchObject([
      { to: 'v1', by: 'cli' },
      { to: 'v2', by: 'cli' },
    ]);
    const h = await run('history', shop);
    expect(h.out).toMatch(/3\s+v2\s+v1\s+cli/);
  });

  it('refuses to activate a version of other dims with the hint to force, and activates it with --force', async () => {
    // Break seen: functions/core/pointer.ts assertActivatable `if (!active || force || …)` → `if (true)`
    // (no compatibility check) — the refusal expectation fails.
    const shop = await shop_(s, 'dims', { only: 'a' });
    const narrow = releaseFiles(false);
    const rows = (text: string) =>
      text
        .trimEnd()
        .split('\n')
        .map((l) => {
          const r = JSON.parse(l) as { vector: number[] };
          return JSON.stringify({ ...r, vector: r.vector.slice(0, 8) });
        })
        .join('\n');
    await s.publish(
      shop,
      'r-narrow',
      { 'items.jsonl': rows(narrow['items.jsonl']!), 'users.jsonl': rows(narrow['users.jsonl']!) },
      { ...JSON.parse(narrow['release.json']!), activate: false },
    );
    const refused = await run('activate', shop, 'v2');
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(
      new RegExp(
        `^vicinity: activate refused: Version v2 is incompatible with active v1: collection (users|items) has 8 dims, active has 16.*\nhint: clients holding vectors of the active shape would break; if they can cope, run \`vicinity activate ${shop} v2 --force\``,
      ),
    );
    expect((await s.get(`/v1/spaces/${shop}`)).body.active).toMatchObject({ version: 'v1', generation: 1 });
    const forced = await run('activate', shop, 'v2', '--force');
    expect(forced.code).toBe(0);
    expect(forced.out).toMatch(new RegExp(`^${shop}: v1 → v2 \\(generation 2, by cli at`));
    expect((await s.get(`/v1/spaces/${shop}`)).body.active).toMatchObject({ version: 'v2', generation: 2 });
  });

  it('against AWS, switches only through the admin API, signed, with changedBy cli', async () => {
    const shop = await shop_(s, 'aws');
    // The stand-ins play AWS: the SDK's standard endpoint variable and credentials from the default chain.
    const restore = withEnv({
      AWS_ENDPOINT_URL_DYNAMODB: s.info.dynamodbEndpoint,
      AWS_ACCESS_KEY_ID: s.info.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s.info.secretAccessKey,
    });
    try {
      const table = ['--table', s.info.table, '--region', s.info.region];
      const status = await run('status', shop, ...table);
      expect(status.out).toMatch(
        new RegExp(
          `Space ${shop}: active v1 \\(release r-a\\), generation 1, previous none, changed by build`,
        ),
      );
      // No direct table writes any more: without the admin API a switch is refused before anything moves.
      const noApi = await run('activate', shop, 'v2', ...table);
      expect(noApi.code).toBe(1);
      expect(noApi.err).toMatch(
        /^vicinity: activate needs the admin API, and no --api-url was given\nhint: pass --api-url \(the stack output ApiUrl\)/,
      );
      expect((await s.get(`/v1/spaces/${shop}`)).body.active).toMatchObject({ version: 'v1', generation: 1 });

      const aws = [...table, '--api-url', s.info.apiUrl];
      const stale = await run('rollback', shop, '--expected-generation', '0', ...aws);
      expect(stale.code).toBe(1);
      expect(stale.err).toMatch(
        new RegExp(`^vicinity: conflict: ${shop} is at generation 1 \\(active v1, moved by build`),
      );
      const a = await run('activate', shop, 'v2', ...aws);
      expect(a.out).toMatch(new RegExp(`^${shop}: v1 → v2 \\(generation 2, by cli`));
      const b = await run('rollback', shop, ...aws);
      expect(b.out).toMatch(new RegExp(`^${shop}: v2 → v1 \\(generation 3, by cli`));
      const status3 = await run('status', shop, ...table);
      expect(status3.out).toMatch(/generation 3, previous v2, changed by cli/);
      const missing = await run('status', shop, '--table', 'no-such-table', '--region', 'us-east-1');
      expect(missing.err).toMatch(/^vicinity: DynamoDB table not found: .*\nhint: check --table/);
    } finally {
      restore();
    }
  });

  it('publishes data files without a release.json, one collection per file', async () => {
    const loose = `loose-${++spaces}`;
    const r = await run(
      'publish',
      loose,
      'a/items.jsonl',
      '--metric',
      'l2',
      '--release',
      'files',
      '--no-progress',
    );
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/items\s+400\s+16\s+l2/);
    expect((await s.get(`/v1/spaces/${loose}`)).body.active).toMatchObject({ version: 'v1' });
  });

  it('reports a FAILED build with the reason, file and line, and a non-zero exit', async () => {
    const shop = await shop_(s, 'failed', { only: 'a' });
    const r = await run('publish', shop, 'bad', '--release', 'r-bad', '--no-progress');
    expect(r.code).toBe(1);
    expect(r.err).toMatch(
      /vicinity: v2 \(release r-bad\) FAILED: items\.jsonl:2: vector has 2 values, expected 16/,
    );
    expect(r.err).toMatch(/hint: check the files locally with `vicinity validate/);
    expect((await s.get(`/v1/spaces/${shop}`)).body.active).toMatchObject({ version: 'v1', generation: 1 });
  });

  it('validates a release folder locally: the same problems, path:line, exit 1', async () => {
    const bad = await run('validate', 'bad', '--no-progress');
    expect(bad.code).toBe(1);
    expect(bad.out).toMatch(/^bad\/items\.jsonl:2: vector has 2 values, expected 16 \(set by line 1\)$/m);
    expect(bad.err).toMatch(/vicinity: bad: 1 problem; the build would refuse this release\nhint: /);
    const good = await run('validate', 'a');
    expect(good.code).toBe(0);
    expect(good.out).toMatch(/OK: a is a valid release \(2 collections, 460 items/);
    await writeDir(join(work, 'dup'), {
      'release.json': JSON.stringify({
        collections: { x: { file: 'x.jsonl', metric: 'l2' }, y: { file: 'y.jsonl', metric: 'l2' } },
      }),
      'x.jsonl': '{"id":"a","vector":[1]}\n{"id":"a","vector":[2]}\n',
      'y.jsonl': '',
    });
    const dup = await run('validate', 'dup');
    expect(dup.out).toMatch(/^dup\/x\.jsonl:2: duplicate id "a" \(first at x\.jsonl:1\)$/m);
    expect(dup.out).toMatch(/^dup\/y\.jsonl: collection y is empty$/m);
  });

  it('trains ALS into a release folder that validates', async () => {
    await writeFile(
      join(work, 'plays.csv'),
      'user,item,count\nu1,a,3\nu1,b,1\nu2,b,5\nu2,c,2\nu3,a,1\nu3,c,4\n',
    );
    const r = await run(
      'train-als',
      'plays.csv',
      '--out',
      'als',
      '--factors',
      '2',
      '--iterations',
      '3',
      '--no-progress',
    );
    expect(r.code).toBe(0);
    expect(r.out).toMatch(/Trained ALS \(factors=2, iterations=3.*on 3 users × 3 items/);
    expect(r.err).toMatch(/Read 6 rows: 3 users × 3 items/);
    expect((await run('validate', 'als')).code).toBe(0);
    const bad = await run('train-als', 'plays.csv', '--out', 'als2', '--factors', '0');
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/--factors must be an integer/);
  });

  it('says what is wrong in one line and a hint, with a non-zero exit', async () => {
    const b = bufferIo({ ...process.env, VICINITY_HOME: join(work, 'nowhere') }, work);
    expect(await runCli(['status', 'shop'], b.io)).toBe(1);
    expect(b.stderr()).toMatch(
      /^vicinity: no local stack found: .*local\.json does not exist\nhint: start the local stack with `npm start`/,
    );
    const unknown = await run('status', 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.err).toMatch(/^vicinity: Unknown space nope\nhint: /);
    const shop = await shop_(s, 'errors', { bad: true });
    const notReady = await run('activate', shop, 'v3');
    expect(notReady.code).toBe(1);
    expect(notReady.err).toMatch(
      /vicinity: activate refused: Version v3 is FAILED.*\nhint: only READY versions/,
    );
    const usage = await run('similar', shop);
    expect(usage.code).toBe(1);
    expect(usage.err).toMatch(/missing required argument 'collection'\nhint: add --help/);
  });

  it('runs as the package bin through tsx', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, [
      join(import.meta.dirname, '../../cli/bin.mjs'),
      '--help',
    ]);
    expect(stdout).toMatch(/^Usage: vicinity \[options\] \[command\]/);
    expect(stdout).toMatch(/publish \[options\] <space> <paths\.\.\.>/);
  });
});

describe('vicinity CLI against a local stack that checks SigV4 on admin routes (VICINITY_ADMIN_AUTH=iam)', () => {
  let s: TestStack;
  let work: string;
  const run = async (...argv: string[]): Promise<Run> => {
    const b = bufferIo({ ...process.env, VICINITY_HOME: s.home }, work);
    const code = await runCli(argv, b.io);
    return { code, out: b.stdout(), err: b.stderr() };
  };
  const pointer = async (shop: string) => (await s.get(`/v1/spaces/${shop}`)).body.active;
  const activatePath = (shop: string) => `/v1/spaces/${shop}/activate`;
  /** A raw POST to the admin route of `shop` with the given headers. */
  const post = async (shop: string, headers: Record<string, string>, body: string) => {
    const res = await fetch(s.info.apiUrl + activatePath(shop), { method: 'POST', headers, body });
    return {
      status: res.status,
      type: res.headers.get('content-type'),
      body: (await res.json()) as Record<string, unknown>,
    };
  };
  const sign = (shop: string, body: string, opts: { secret?: string; at?: Date } = {}) =>
    signedHeaders(
      {
        region: s.info.region,
        credentials: {
          accessKeyId: s.info.accessKeyId,
          secretAccessKey: opts.secret ?? s.info.secretAccessKey,
        },
      },
      'POST',
      new URL(s.info.apiUrl + activatePath(shop)),
      { 'content-type': 'application/json' },
      body,
      opts.at,
    );

  beforeAll(async () => {
    [s, work] = await Promise.all([
      testStack({}, undefined, { adminAuth: 'iam' }),
      mkdtemp(join(tmpdir(), 'vicinity-cli-iam-')),
    ]);
  });
  afterAll(async () => {
    await s?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('writes the setting into local.json', async () => {
    expect(s.info.adminAuth).toBe('iam');
  });

  it('refuses an unsigned activation with 403 problem+json, and the pointer stays', async () => {
    const shop = await shop_(s, 'unsigned');
    expect(await pointer(shop)).toMatchObject({ version: 'v1', generation: 1 });
    const r = await post(
      shop,
      { 'content-type': 'application/json' },
      JSON.stringify({ version: 'v2', expectedGeneration: 1 }),
    );
    expect(r.status).toBe(403);
    expect(r.type).toBe('application/problem+json');
    expect(r.body).toMatchObject({ status: 403, title: 'Forbidden' });
    expect(r.body.detail).toMatch(/SigV4/);
    expect(await pointer(shop)).toMatchObject({ version: 'v1', generation: 1 });
  });

  it('refuses a tampered signature, a changed body, a wrong secret and a stale date', async () => {
    const shop = await shop_(s, 'tampered');
    const body = JSON.stringify({ version: 'v2', expectedGeneration: 1, by: 'cli' });
    const good = await sign(shop, body);
    const flipped = good.authorization?.replace(
      /Signature=([0-9a-f])/,
      (_m, c: string) => `Signature=${c === '0' ? '1' : '0'}`,
    );
    const tampered = await post(shop, { ...good, authorization: flipped as string }, body);
    expect(tampered.status).toBe(403);
    expect(tampered.type).toBe('application/problem+json');
    expect(tampered.body.detail).toMatch(/signature does not match/);
    const changed = await post(shop, good, body.replace('v2', 'v1'));
    expect(changed.status).toBe(403);
    const wrongSecret = await post(shop, await sign(shop, body, { secret: 'not-the-secret' }), body);
    expect(wrongSecret.status).toBe(403);
    const stale = await post(shop, await sign(shop, body, { at: new Date(Date.now() - 6 * 60_000) }), body);
    expect(stale.status).toBe(403);
    expect(stale.body.detail).toMatch(/expired/);
    expect(await pointer(shop)).toMatchObject({ version: 'v1', generation: 1 });
    expect((await s.get(`/v1/spaces/${shop}/history`)).body.history).toHaveLength(1);
  });

  it('accepts the same request signed properly', async () => {
    const shop = await shop_(s, 'signed');
    const body = JSON.stringify({ version: 'v2', expectedGeneration: 1, by: 'cli' });
    const r = await post(shop, await sign(shop, body), body);
    expect(r.status).toBe(200);
    const back = JSON.stringify({ expectedGeneration: 2, by: 'cli' });
    const rb = await fetch(`${s.info.apiUrl}/v1/spaces/${shop}/rollback`, {
      method: 'POST',
      body: back,
      headers: await signedHeaders(
        {
          region: s.info.region,
          credentials: { accessKeyId: s.info.accessKeyId, secretAccessKey: s.info.secretAccessKey },
        },
        'POST',
        new URL(`${s.info.apiUrl}/v1/spaces/${shop}/rollback`),
        { 'content-type': 'application/json' },
        back,
      ),
    });
    expect(rb.status).toBe(200);
    expect(await pointer(shop)).toMatchObject({ version: 'v1', generation: 3 });
  });

  it('activates and rolls back through the CLI, signed with credentials from the environment', async () => {
    const shop = await shop_(s, 'envsigned');
    const restore = withEnv({
      AWS_ACCESS_KEY_ID: s.info.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s.info.secretAccessKey,
    });
    try {
      const api = ['--api-url', s.info.apiUrl, '--region', s.info.region];
      const a = await run('activate', shop, 'v2', ...api);
      expect(a.err).toBe('');
      expect(a.out).toMatch(new RegExp(`^${shop}: v1 → v2 \\(generation 2, by cli at`));
      const b = await run('rollback', shop, ...api);
      expect(b.out).toMatch(new RegExp(`^${shop}: v2 → v1 \\(generation 3, by cli at`));
    } finally {
      restore();
    }
    const wrong = withEnv({ AWS_ACCESS_KEY_ID: s.info.accessKeyId, AWS_SECRET_ACCESS_KEY: 'wrong' });
    try {
      const refused = await run(
        'activate',
        shop,
        'v2',
        '--api-url',
        s.info.apiUrl,
        '--region',
        s.info.region,
      );
      expect(refused.code).toBe(1);
      expect(refused.err).toMatch(
        /^vicinity: The request signature does not match.*\nhint: the API needs IAM \(SigV4\)/,
      );
    } finally {
      wrong();
    }
    expect(await pointer(shop)).toMatchObject({ version: 'v1', generation: 3 });
    expect((await s.get(`/v1/spaces/${shop}`)).body.pointer).toMatchObject({ changedBy: 'cli' });
  });

  it("signs with the stack's own key pair from local.json by default", async () => {
    const shop = await shop_(s, 'default-key');
    const a = await run('activate', shop, 'v2');
    expect(a.out).toMatch(new RegExp(`^${shop}: v1 → v2 \\(generation 2, by cli at`));
    const history = (await s.get(`/v1/spaces/${shop}/history`)).body.history as { to: string; by: string }[];
    expect(history[0]).toMatchObject({ to: 'v2', by: 'cli' });
  });
});

describe('vicinity CLI against a stack whose reads need SigV4 too (a default deploy: readAuth iam)', () => {
  let s: TestStack;
  let work: string;
  const run = async (...argv: string[]): Promise<Run> => {
    const b = bufferIo({ ...process.env, VICINITY_HOME: s.home, AWS_EC2_METADATA_DISABLED: 'true' }, work);
    const code = await runCli(argv, b.io);
    return { code, out: b.stdout(), err: b.stderr() };
  };

  beforeAll(async () => {
    [s, work] = await Promise.all([
      testStack({}, undefined, { adminAuth: 'iam', readAuth: 'iam' }),
      mkdtemp(join(tmpdir(), 'vicinity-cli-reads-')),
    ]);
  });
  afterAll(async () => {
    await s?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('refuses an unsigned read with 403 problem+json, but not a CORS preflight', async () => {
    const shop = await shop_(s, 'unsigned-read', { only: 'a' });
    const r = await s.get(`/v1/spaces/${shop}/collections/items/items/i0/similar`);
    expect(r.status).toBe(403);
    expect(r.headers.get('content-type')).toBe('application/problem+json');
    expect(String(r.body.detail)).toMatch(/SigV4/);
    const preflight = await fetch(`${s.info.apiUrl}/v1/spaces/${shop}`, { method: 'OPTIONS' });
    expect(preflight.status).toBe(204);
  });

  it('signs its reads: status, versions and similar work locally and with --api-url', async () => {
    const shop = await shop_(s, 'signed-read');
    expect((await run('status', shop)).code).toBe(0);
    const versions = await run('versions', shop);
    expect(versions.code, versions.err).toBe(0);
    expect(versions.out).toMatch(/v2/);
    const local = await run('similar', shop, 'items', 'i0', '-k', '3');
    expect(local.code, local.err).toBe(0);
    expect(local.out.split('\n')[0]).toBe(`${shop} v1 · items/i0 "Item 0" → items: 3 results`);
    const restore = withEnv({
      AWS_ACCESS_KEY_ID: s.info.accessKeyId,
      AWS_SECRET_ACCESS_KEY: s.info.secretAccessKey,
    });
    try {
      const api = ['--api-url', s.info.apiUrl, '--region', s.info.region];
      const remote = await run('similar', shop, 'items', 'i0', '-k', '3', ...api);
      expect(remote.code, remote.err).toBe(0);
      expect(remote.out).toBe(local.out);
    } finally {
      restore();
    }
    // Credentials the API does not accept: 403, and the hint names the read policy.
    const wrong = withEnv({ AWS_ACCESS_KEY_ID: s.info.accessKeyId, AWS_SECRET_ACCESS_KEY: 'wrong' });
    try {
      const refused = await run(
        'similar',
        shop,
        'items',
        'i0',
        '--api-url',
        s.info.apiUrl,
        '--region',
        s.info.region,
      );
      expect(refused.code).toBe(1);
      expect(refused.err).toMatch(/hint: the API needs IAM \(SigV4\).*ReadInvokePolicyArn/);
    } finally {
      wrong();
    }
  });
});
