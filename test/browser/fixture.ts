/**
 * A local stack serving the built explorer page, with a known release pair in space `music`:
 * v1 (active) and v2 (READY, not activated, neighbours moved), plus v3, a release that FAILED.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { S3Store } from '../../functions/adapters/s3-store';
import { type LocalStack, startLocalStack } from '../../local/stack';
import { createStaticHandler } from '../../local/static';
import { clusteredVectors, jsonlRows, mulberry32 } from '../../local/synthetic';

process.env.POWERTOOLS_METRICS_DISABLED = 'true';
process.env.POWERTOOLS_LOG_LEVEL = 'CRITICAL';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

export const ROOT = resolve(import.meta.dirname, '../..');
export const ARTIFACTS = join(ROOT, 'test-artifacts');

/** Chromium from Debian (never a browser download): CHROMIUM_PATH, else /usr/bin/chromium. */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
];

export const ARTISTS = [
  'Radiohead',
  'Radio Birdman',
  'Portishead',
  'Massive Attack',
  'Björk',
  'Sigur Rós',
  'Boards of Canada',
  'Aphex Twin',
  'The Beatles',
  'Pink Floyd',
];
const GENRES = ['rock', 'trip-hop', 'electronic', 'post-rock', 'ambient', 'pop'];
export const DIMS = 16;
export const N_ARTISTS = 1500;
export const N_USERS = 300;

export const artistIds = Array.from({ length: N_ARTISTS }, (_, i) => `a${i + 1}`);
export const artistName = (i: number) => ARTISTS[i] ?? `Artist ${i + 1}`;

/** One model run: v2 uses another seed for a share of the artists, so their neighbourhoods move. */
function release(run: 1 | 2) {
  const base = clusteredVectors(N_ARTISTS, DIMS, GENRES.length, 42);
  const moved = clusteredVectors(N_ARTISTS, DIMS, GENRES.length, 4242);
  const vectors = Float32Array.from(base.vectors);
  if (run === 2) {
    // Every third artist moves (not a1), so overlaps land between 0 and 1.
    for (let i = 2; i < N_ARTISTS; i += 3)
      vectors.set(moved.vectors.subarray(i * DIMS, (i + 1) * DIMS), i * DIMS);
  }
  const users = clusteredVectors(N_USERS, DIMS, GENRES.length, 7 + run);
  const rand = mulberry32(99);
  const userIds = Array.from({ length: N_USERS }, (_, i) => `u${i + 1}`);
  return {
    'artists.jsonl': jsonlRows(artistIds, vectors, DIMS, (i) => ({
      name: artistName(i),
      genre: GENRES[(base.cluster[i] as number) % GENRES.length],
      listeners: Math.floor(rand() * 100_000),
    })),
    'users.jsonl': jsonlRows(userIds, users.vectors, DIMS, () => ({
      seen: Array.from({ length: 4 }, () => artistIds[Math.floor(rand() * N_ARTISTS)]),
    })),
  };
}

const releaseJson = (activate: boolean) => ({
  collections: {
    artists: { file: 'artists.jsonl', metric: 'cosine' },
    users: { file: 'users.jsonl', metric: 'cosine' },
  },
  activate,
  seenField: 'seen',
});

export interface Fixture {
  stack: LocalStack;
  url: string;
  api<T = Record<string, unknown>>(path: string, init?: RequestInit): Promise<{ status: number; body: T }>;
  dispose(): Promise<void>;
}

/** Builds the page if it is stale (as `npm start` does). */
export function buildPage(): void {
  execFileSync(process.execPath, [join(ROOT, 'web/build-if-stale.mjs')], { stdio: 'inherit', cwd: ROOT });
}

export async function startFixture(): Promise<Fixture> {
  buildPage();
  if (!existsSync(join(ROOT, 'web/dist/index.html'))) throw new Error('web/dist was not built');
  const home = await mkdtemp(join(tmpdir(), 'vicinity-browser-'));
  const stack = await startLocalStack({
    home,
    port: 0,
    staticHandler: createStaticHandler(),
    config: { fileWaitMs: 1000, qualitySample: 50 },
  });
  const store = new S3Store(stack.deps.s3, stack.info.bucket);
  const publish = async (name: string, files: Record<string, string>, json: unknown) => {
    for (const [file, text] of Object.entries(files))
      await store.putText(`incoming/music/${name}/${file}`, text);
    await store.putText(`incoming/music/${name}/release.json`, JSON.stringify(json));
    await stack.idle();
  };
  await publish('als-2026-11-01', release(1), releaseJson(true));
  await publish('als-2026-11-08', release(2), releaseJson(false));
  // A broken release: the build fails on a row with a missing vector; v1 keeps serving.
  await publish(
    'als-2026-11-09',
    { 'artists.jsonl': '{"id":"a1","vector":[0.1,0.2]}\n{"id":"a2"}\n', 'users.jsonl': '' },
    releaseJson(true),
  );
  const url = stack.info.apiUrl;
  return {
    stack,
    url,
    api: async <T>(path: string, init?: RequestInit) => {
      const res = await fetch(url + path, init);
      return { status: res.status, body: (await res.json()) as T };
    },
    dispose: async () => {
      await stack.stop();
      await rm(home, { recursive: true, force: true });
    },
  };
}
