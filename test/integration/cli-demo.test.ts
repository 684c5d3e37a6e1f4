/**
 * The first-start demo as `npm start` publishes it: ALS trained on examples/lastfm with a fixed seed,
 * space `music` with users and artists, served by the local stack — the same neighbours every run.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferIo } from '../../cli/io';
import { runCli } from '../../cli/main';
import { DEMO_ARTIST, DEMO_USER, type MusicDemo, publishMusicDemo } from '../../local/demo';
import { type TestStack, testStack } from '../support/local';

/** Radiohead's ten nearest artists by inner product, 32 factors, seed 42 (examples/lastfm/README.md). */
const RADIOHEAD_NEIGHBOURS = [
  'The Beatles',
  'The Cure',
  'Muse',
  'Sigur Rós',
  'Coldplay',
  'Placebo',
  'Pink Floyd',
  'The Killers',
  'The Smiths',
  'Nine Inch Nails',
];

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

  it("serves Radiohead's neighbours, the same for the fixed seed every time", async () => {
    const r = await s.get(`/v1/spaces/music/collections/artists/items/${DEMO_ARTIST}/similar?k=10`);
    expect(r.status).toBe(200);
    expect((r.body.results as Results).map((x) => x.metadata.name)).toEqual(RADIOHEAD_NEIGHBOURS);
    const b = bufferIo({ ...process.env, VICINITY_HOME: s.home }, work);
    expect(await runCli(['similar', 'music', 'artists', DEMO_ARTIST, '-k', '3'], b.io)).toBe(0);
    expect(b.stdout()).toMatch(
      /music v1 · artists\/154 "Radiohead" → artists: 3 results\n.*\n.*The Beatles\n.*The Cure\n.*Muse\n$/,
    );
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
