import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { trainAls } from '../../examples/als/als';
import {
  type AlsReleaseSummary,
  interactionsMatrix,
  LASTFM_DEMO_OPTIONS,
  type LastfmDemo,
  loadLastfmDemo,
  readInteractions,
  readItemNames,
  readItemTags,
  trainAlsCommand,
  writeAlsRelease,
} from '../../examples/als/train-als';
import { parseRelease } from '../../functions/core/release';

const DEMO_DIR = join(import.meta.dirname, '../../examples/lastfm');
const RADIOHEAD = '154';

interface Row {
  id: string;
  vector: number[];
  metadata: Record<string, unknown>;
}

function readJsonl(path: string): Row[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Row);
}

/** Brute-force top-k by inner product (the release's metric) or cosine. */
function nearest(
  ids: string[],
  vectors: ArrayLike<number>[],
  query: string,
  k: number,
  cosine = false,
): string[] {
  const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
  const q = vectors[ids.indexOf(query)]!;
  const qn = norm(q);
  return ids
    .map((id, r) => {
      const v = vectors[r]!;
      let s = 0;
      for (let a = 0; a < q.length; a++) s += q[a]! * v[a]!;
      return { id, s: cosine ? s / (qn * norm(v)) : s };
    })
    .filter((x) => x.id !== query)
    .sort((a, b) => b.s - a.s || (a.id < b.id ? -1 : 1))
    .slice(0, k)
    .map((x) => x.id);
}

// Artists a listener would call related to Radiohead (checked against the trained lists).
const RELATED = [
  'Muse',
  'Coldplay',
  'Thom Yorke',
  'Portishead',
  'Björk',
  'Placebo',
  'Sigur Rós',
  'The Smiths',
  'The Cure',
  'Pink Floyd',
  'Arcade Fire',
  'Interpol',
  'Beck',
  'Pixies',
  'Blur',
  'Franz Ferdinand',
  'Bloc Party',
  'The Strokes',
  'Massive Attack',
];
const UNRELATED = [
  'Britney Spears',
  'Lady Gaga',
  'Rihanna',
  'Katy Perry',
  'Justin Bieber',
  'Christina Aguilera',
];

describe('readInteractions and the metadata readers', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'train-als-read-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads tab-separated rows with a header, and comma-separated rows without one', async () => {
    const tsv = join(dir, 'a.tsv');
    writeFileSync(tsv, '\uFEFFuserID\tartistID\tweight\r\n2\t51\t13883\r\n2\t52\t7\r\n\r\n3\t51\t1\r\n');
    const a = await readInteractions(tsv);
    expect(a.users).toEqual(['2', '3']);
    expect(a.items).toEqual(['51', '52']);
    expect(Array.from(a.userIndex)).toEqual([0, 0, 1]);
    expect(Array.from(a.itemIndex)).toEqual([0, 1, 0]);
    expect(Array.from(a.values)).toEqual([13883, 7, 1]);

    const csv = join(dir, 'b.csv');
    writeFileSync(csv, '# plays\nu1,i1,2.5\n"u 2",i2,3\nu1,i2\nu1,i1,1\n');
    const b = await readInteractions(csv);
    expect(b.users).toEqual(['u1', 'u 2']);
    expect(Array.from(b.values)).toEqual([2.5, 3, 1, 1]); // a row without a count counts 1
    const m = interactionsMatrix(b); // repeated (u1, i1) rows are summed
    expect(Array.from(m.indptr)).toEqual([0, 2, 3]);
    expect(Array.from(m.data)).toEqual([3.5, 1, 3]);
  });

  it('names the file and line of a bad row', async () => {
    const bad = join(dir, 'bad.tsv');
    writeFileSync(bad, 'userID\tartistID\tweight\n1\t2\t3\n1\t3\tmany\n');
    await expect(readInteractions(bad)).rejects.toThrow(`${bad}:3: count "many" is not a number`);
    writeFileSync(bad, '1\t2\t3\n1\n');
    await expect(readInteractions(bad)).rejects.toThrow(`${bad}:2: expected "user item count"`);
  });

  it('reads names and tags files', async () => {
    const names = join(dir, 'names.tsv');
    writeFileSync(names, 'id\tname\n1\tMALICE MIZER\n2\tBjörk\n3\t\n');
    expect(await readItemNames(names)).toEqual(
      new Map([
        ['1', 'MALICE MIZER'],
        ['2', 'Björk'],
      ]),
    );
    const tags = join(dir, 'tags.tsv');
    writeFileSync(tags, 'artistID\ttags\n1\tj-rock|visual kei\n2\t\n');
    expect(await readItemTags(tags)).toEqual(new Map([['1', ['j-rock', 'visual kei']]]));
  });

  it('leaves out users and items without a positive value, and refuses a bad collection name', async () => {
    const input = join(dir, 'zeros.tsv');
    writeFileSync(input, 'a\tx\t3\na\ty\t1\nb\tx\t2\nc\tz\t0\n');
    const out = join(dir, 'zeros-release');
    const summary = await trainAlsCommand({ input, out, factors: 2, iterations: 3, items: 'things' });
    expect(summary).toMatchObject({ users: 2, items: 2, skippedUsers: 1, skippedItems: 1, rows: 4 });
    expect(readJsonl(join(out, 'users.jsonl')).map((r) => [r.id, r.metadata.seen])).toEqual([
      ['a', ['x', 'y']],
      ['b', ['x']],
    ]);
    expect(readJsonl(join(out, 'things.jsonl')).map((r) => [r.id, r.metadata])).toEqual([
      ['x', { plays: 5, listeners: 2 }],
      ['y', { plays: 1, listeners: 1 }],
    ]);
    await expect(trainAlsCommand({ input, out, items: 'users' })).rejects.toThrow(/must match/);
    await expect(trainAlsCommand({ input, out, items: 'Bad Name' })).rejects.toThrow(/must match/);
  });
});

describe('train-als on the Last.fm demo', () => {
  let demo: LastfmDemo;
  let out: string;
  let summary: AlsReleaseSummary;
  let artists: Row[];
  let users: Row[];
  const names = new Map<string, string>();
  const raw = readFileSync(join(DEMO_DIR, 'user_artists.dat'), 'utf8')
    .split('\n')
    .slice(1)
    .filter((l) => l !== '')
    .map((l) => l.split('\t') as [string, string, string]);

  beforeAll(async () => {
    demo = await loadLastfmDemo(DEMO_DIR);
    for (const [id, name] of demo.itemNames) names.set(id, name);
    out = mkdtempSync(join(tmpdir(), 'train-als-lastfm-'));
    summary = await writeAlsRelease({
      interactions: demo.interactions,
      outDir: out,
      itemsCollection: 'artists',
      itemNames: demo.itemNames,
      itemTags: demo.itemTags,
      options: LASTFM_DEMO_OPTIONS,
    });
    artists = readJsonl(join(out, 'artists.jsonl'));
    users = readJsonl(join(out, 'users.jsonl'));
  });
  afterAll(() => rmSync(out, { recursive: true, force: true }));

  it('loads the demo files (UTF-8 names, latin1-decoded tags)', () => {
    expect(demo.interactions.users).toHaveLength(1892);
    expect(demo.interactions.items).toHaveLength(17632);
    expect(demo.interactions.values).toHaveLength(92834);
    expect(demo.itemNames.get(RADIOHEAD)).toBe('Radiohead');
    expect(demo.itemNames.get('1098')).toBe('Björk');
    expect(demo.itemTags.get(RADIOHEAD)).toContain('alternative');
    expect(demo.itemTags.get('5676')).toContain('düsseldorf');
  });

  it('writes a release.json the contract accepts, and both collections', async () => {
    const text = readFileSync(join(out, 'release.json'), 'utf8');
    const spec = await parseRelease(text);
    expect(spec.seenField).toBe('seen');
    expect(spec.activate).toBe(true);
    expect(spec.collections.map((c) => [c.name, c.format, c.files, c.metric])).toEqual([
      ['users', 'jsonl', ['users.jsonl'], 'ip'],
      ['artists', 'jsonl', ['artists.jsonl'], 'ip'],
    ]);
    expect(summary).toMatchObject({
      users: 1892,
      items: 17632,
      skippedUsers: 0,
      skippedItems: 0,
      rows: 92834,
    });
    expect(users).toHaveLength(1892);
    expect(artists).toHaveLength(17632);
    for (const r of [...users.slice(0, 50), ...artists.slice(0, 50)]) expect(r.vector).toHaveLength(32);
    const loss = summary.lossHistory!;
    expect(loss).toHaveLength(15);
    expect(loss[14]!).toBeLessThan(loss[0]!);
  });

  it("writes each artist's name, tags, plays and listeners", () => {
    let plays = 0;
    let listeners = 0;
    for (const [, artist, weight] of raw) {
      if (artist !== RADIOHEAD) continue;
      plays += Number(weight);
      listeners++;
    }
    const radiohead = artists.find((r) => r.id === RADIOHEAD)!;
    expect(radiohead.metadata).toEqual({
      name: 'Radiohead',
      tags: demo.itemTags.get(RADIOHEAD),
      plays,
      listeners,
    });
    // An artist nobody tagged has no tags field.
    const untagged = artists.find((r) => !demo.itemTags.has(r.id))!;
    expect(Object.keys(untagged.metadata).sort()).toEqual(['listeners', 'name', 'plays']);
  });

  it("lists each user's played artists as seen, exactly as in the input", () => {
    const expected = new Map<string, string[]>();
    for (const [user, artist] of raw) {
      const list = expected.get(user) ?? [];
      list.push(artist);
      expected.set(user, list);
    }
    expect(new Map(users.map((r) => [r.id, r.metadata.seen]))).toEqual(expected);
  });

  it("finds artists a listener would recognise as Radiohead's neighbours", () => {
    const ids = artists.map((r) => r.id);
    const vectors = artists.map((r) => r.vector);
    const top = nearest(ids, vectors, RADIOHEAD, 20).map((id) => names.get(id));
    const related = top.filter((n) => RELATED.includes(n!));
    expect(related.length, `top 20: ${top.join(', ')}`).toBeGreaterThanOrEqual(5);
    expect(top.filter((n) => UNRELATED.includes(n!))).toEqual([]);
    // Cosine over the same factors agrees on the neighbourhood.
    const byCosine = nearest(ids, vectors, RADIOHEAD, 20, true).map((id) => names.get(id));
    expect(byCosine.filter((n) => RELATED.includes(n!)).length, byCosine.join(', ')).toBeGreaterThanOrEqual(
      3,
    );
  });

  it('gives the same top 10 when trained again with the same seed', () => {
    const model = trainAls(interactionsMatrix(demo.interactions), {
      ...LASTFM_DEMO_OPTIONS,
      computeLoss: false,
    });
    const f = model.factors;
    const ids = demo.interactions.items;
    const vectors = ids.map((_, i) => model.itemFactors.subarray(i * f, (i + 1) * f));
    const again = nearest(ids, vectors, RADIOHEAD, 10);
    const fromRelease = nearest(
      artists.map((r) => r.id),
      artists.map((r) => r.vector),
      RADIOHEAD,
      10,
    );
    expect(again).toEqual(fromRelease);
    // The written vectors are this model's factors, rounded to 6 significant digits.
    const written = artists.find((r) => r.id === RADIOHEAD)!.vector;
    const exact = vectors[ids.indexOf(RADIOHEAD)]!;
    for (let a = 0; a < f; a++) expect(written[a]!).toBeCloseTo(exact[a]!, 5);
  });
});
