/**
 * The first-start demo as `npm start` publishes it: ALS trained on examples/lastfm with a fixed seed,
 * space `music` with users and artists, served by the local stack — the same neighbours every run.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferIo } from '../../cli/io';
import { runCli } from '../../cli/main';
import { DEMO_ARTIST, DEMO_USER, type MusicDemo, publishMusicDemo } from '../../local/demo';
import { type TestStack, testStack } from '../support/local';
import { exactKnn, expectExactNeighbours, parseJsonl } from '../support/oracle';

type Results = { id: string; score: number; metadata: { name?: string; seen?: string[] } }[];

describe('the music demo', () => {
  let s: TestStack;
  let work: string;
  let demo: MusicDemo;

  beforeAll(async () => {
    [s, work] = await Promise.all([testStack(), mkdtemp(join(tmpdir(), 'vicinity-demo-'))]);
    demo = await publishMusicDemo(s.store, { workDir: work });
    await s.idle();
  });
  afterAll(async () => {
    await s?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('publishes users and artists with names, seen lists and a seenField, and activates them', async () => {
    expect(demo).toMatchObject({ space: 'music', users: 1892, artists: 17632 });
    const v = await s.get('/v1/spaces/music/versions/v1');
    expect(v.body).toMatchObject({ status: 'READY', release: 'lastfm-als' });
    expect(v.body.collections).toMatchObject({
      users: { count: 1892, dims: 32, metric: 'ip' },
      artists: { count: 17632, dims: 32, metric: 'ip' },
    });
    expect((await s.get('/v1/spaces/music')).body.active).toMatchObject({ version: 'v1' });
  });

  it("serves Radiohead's neighbours: the exact ones of the trained factors, sharing its tags far above chance", async () => {
    // No golden list copied from the program's output: the answer must be the exact inner-product top 10
    // over the release the demo trained, and those artists must share Radiohead's tags far more often
    // than artists at large do (the factors learnt something about taste).
    const r = await s.get(`/v1/spaces/music/collections/artists/items/${DEMO_ARTIST}/similar?k=10&ef=500`);
    expect(r.status).toBe(200);
    const results = r.body.results as Results;
    expect(results).toHaveLength(10);
    const artists = parseJsonl(await readFile(join(demo.dir, 'artists.jsonl'), 'utf8'));
    const seedRow = artists.ids.indexOf(DEMO_ARTIST);
    expect(artists.metadata[seedRow]).toMatchObject({ name: 'Radiohead' });
    const ranked = exactKnn('ip', artists.rows, artists.ids, artists.rows[seedRow] as number[]).filter(
      (n) => n.id !== DEMO_ARTIST,
    );
    expectExactNeighbours(
      results.map((x) => x.id),
      ranked,
      10,
      1e-5,
    );

    const tagsOf = (row: number) => new Set(((artists.metadata[row]?.tags ?? []) as string[]).map(String));
    const seedTags = tagsOf(seedRow);
    expect(seedTags.size).toBeGreaterThan(0);
    const shared = (row: number) => [...tagsOf(row)].filter((t) => seedTags.has(t)).length;
    const rowOf = new Map(artists.ids.map((id, i) => [id, i]));
    const neighbours = results.map((x) => shared(rowOf.get(x.id) as number));
    let all = 0;
    for (let i = 0; i < artists.ids.length; i++) if (i !== seedRow) all += shared(i);
    const chance = all / (artists.ids.length - 1);
    const mean = neighbours.reduce((a, b) => a + b, 0) / neighbours.length;
    expect(neighbours.filter((n) => n > 0).length).toBeGreaterThanOrEqual(7);
    expect(mean).toBeGreaterThan(5 * chance);

    // The CLI prints the same first three, by name.
    const b = bufferIo({ ...process.env, VICINITY_HOME: s.home }, work);
    expect(await runCli(['similar', 'music', 'artists', DEMO_ARTIST, '-k', '3'], b.io)).toBe(0);
    const [first, second, third] = results.map((x) => x.metadata.name);
    expect(b.stdout()).toMatch(/^music v1 · artists\/154 "Radiohead" → artists: 3 results\n/);
    expect(
      b
        .stdout()
        .trim()
        .split('\n')
        .slice(2)
        .map((l) => l.replace(/^\d+\s+\S+\s+\S+\s+/, '')),
    ).toEqual([first, second, third]);
  });

  it('recommends artists the user has not played (excludeSeen)', async () => {
    const user = await s.get(`/v1/spaces/music/collections/users/items/${DEMO_USER}`);
    const seen = new Set((user.body.metadata as { seen: string[] }).seen);
    expect(seen.size).toBe(50);
    const r = await s.get(
      `/v1/spaces/music/collections/users/items/${DEMO_USER}/similar?target=artists&k=10&excludeSeen=true`,
    );
    const results = r.body.results as Results;
    expect(results).toHaveLength(10);
    for (const x of results) expect(seen.has(x.id)).toBe(false);
    // Without excludeSeen the top of the list is what the user already plays.
    const all = await s.get(
      `/v1/spaces/music/collections/users/items/${DEMO_USER}/similar?target=artists&k=10`,
    );
    expect((all.body.results as Results).filter((x) => seen.has(x.id)).length).toBeGreaterThan(5);
  });
});
