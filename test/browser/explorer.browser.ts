/**
 * The explorer page end to end, in Debian's Chromium driven by playwright-core: a local stack with a
 * known release pair (v1 active, v2 a READY candidate, v3 FAILED), the page served on the API's port.
 * Screenshots of each view go to test-artifacts/.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CopyObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { ARTIFACTS, CHROMIUM, CHROMIUM_FLAGS, type Fixture, N_ARTISTS, startFixture } from './fixture';

const haveChromium = existsSync(CHROMIUM);
// In CI a missing browser is a failure, not a skip: a suite that skips itself there proves nothing.
if (!haveChromium && process.env.CI) {
  throw new Error(
    `the explorer browser tests need Chromium at ${CHROMIUM} (CI is set, so they do not skip): install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH`,
  );
}
if (!haveChromium) {
  console.warn(
    `SKIPPED the explorer browser tests: no Chromium at ${CHROMIUM}. Install Debian's (apt-get install -y chromium) or set CHROMIUM_PATH; .ci/browser.sh does the former.`,
  );
}

interface Result {
  id: string;
  score: number;
  metadata?: { name?: string };
}

/** Overlap@k as the API defines it (functions/core/search.ts). */
function overlapAt(a: string[], b: string[], k: number): number {
  const inA = new Set(a.slice(0, k));
  const hit = b.slice(0, k).filter((id) => inA.has(id)).length;
  return hit / Math.min(k, Math.max(a.length, b.length, 1));
}

/** Waits on what a cold snapshot load (download, verify, parse) must finish first. */
const COLD = { timeout: 15_000, interval: 100 };
/** Waits on the page redrawing from data it already has (or one warm API call). */
const WARM = { timeout: 5_000, interval: 50 };

/**
 * Every test opens its own page at the state it needs (a fresh page load, default viewport) and
 * checks its own console errors and failed requests, so each runs alone and in any order. Only the
 * activation test moves a pointer, and it does so on a copy of the space (`music-act-N`).
 */
describe.skipIf(!haveChromium)('explorer page in Chromium', () => {
  let f: Fixture;
  let ctx: BrowserContext;
  let page: Page;
  let userDataDir: string;
  let consoleErrors: string[] = [];
  let failedResponses: string[] = [];
  /** Console errors and failed requests a test provokes on purpose (reset before each test). */
  let allowedErrors: RegExp[] = [];
  let expectedFailures: string[] = [];
  const timings: Record<string, number> = {};
  /** A fresh page at `hash` (the explorer's state: space, collection, item, compare), loaded and ready. */
  const open = async (hash = '') => {
    await page.goto(`${f.url}/${hash ? `#${hash}` : ''}`);
    await page.waitForSelector('body[data-ready="true"]');
  };
  /** A copy of `music` (same releases, same build order: v1 active, v2 READY, v3 FAILED). */
  let copies = 0;
  const copyOfMusic = async () => {
    const space = `music-act-${++copies}`;
    const s3 = f.stack.deps.s3;
    const bucket = f.stack.info.bucket;
    const keys = (
      (await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: 'incoming/music/' }))).Contents ?? []
    )
      .map((o) => o.Key as string)
      .sort();
    const releases = [...new Set(keys.map((k) => k.split('/')[2] as string))].sort();
    for (const release of releases) {
      const files = keys.filter((k) => k.startsWith(`incoming/music/${release}/`));
      // release.json last, as a producer uploads.
      for (const key of [
        ...files.filter((k) => !k.endsWith('/release.json')),
        ...files.filter((k) => k.endsWith('/release.json')),
      ])
        await s3.send(
          new CopyObjectCommand({
            Bucket: bucket,
            CopySource: `${bucket}/${key}`,
            Key: key.replace('incoming/music/', `incoming/${space}/`),
          }),
        );
      await f.stack.idle();
    }
    return space;
  };

  const shot = async (name: string, target: Page | ReturnType<Page['locator']> = page, fullPage = false) => {
    const path = join(ARTIFACTS, name);
    if ('goto' in target) await target.screenshot({ path, fullPage });
    else await target.screenshot({ path });
    return path;
  };
  const similar = async (id: string, version: string, k = 10) =>
    (
      await f.api<{ results: Result[] }>(
        `/v1/spaces/music/collections/artists/items/${id}/similar?k=${k}&version=${version}`,
      )
    ).body.results;
  const columnIds = (version: string) =>
    page
      .locator(`#neighbours .column[data-version="${version}"] tbody tr`)
      .evaluateAll((rows) => rows.map((r) => (r as unknown as { dataset: { id: string } }).dataset.id));

  beforeAll(async () => {
    const t0 = performance.now();
    await mkdir(ARTIFACTS, { recursive: true });
    f = await startFixture();
    timings.fixtureMs = performance.now() - t0;
    const t1 = performance.now();
    userDataDir = await mkdtemp(join(tmpdir(), 'vicinity-chromium-'));
    ctx = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      args: CHROMIUM_FLAGS,
      headless: true,
      viewport: { width: 1280, height: 800 },
    });
    timings.browserMs = performance.now() - t1;
  });

  beforeEach(async () => {
    consoleErrors = [];
    failedResponses = [];
    allowedErrors = [];
    expectedFailures = [];
    for (const old of ctx.pages()) await old.close();
    page = await ctx.newPage();
    await page.setViewportSize({ width: 1280, height: 800 });
    page.on('console', (m) => {
      if (m.type() === 'error') consoleErrors.push(m.text());
    });
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
    page.on('response', (r) => {
      if (r.status() >= 400)
        failedResponses.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
    });
  });

  afterEach(() => {
    // Every test: no console errors and no failed requests but the ones it provoked on purpose.
    expect(consoleErrors.filter((e) => !allowedErrors.some((r) => r.test(e)))).toEqual([]);
    expect(failedResponses).toEqual(expectedFailures);
  });

  afterAll(async () => {
    await ctx?.close();
    await f?.dispose();
    if (userDataDir) await rm(userDataDir, { recursive: true, force: true });
    console.log(
      `explorer browser timings (ms): ${JSON.stringify(Object.fromEntries(Object.entries(timings).map(([k, v]) => [k, Math.round(v)])))}`,
    );
  });

  it('shows the versions timeline and the pointer history', async () => {
    const t0 = performance.now();
    await open();
    timings.firstLoadMs = performance.now() - t0;
    await expect.poll(() => page.locator('[data-testid="active-version"]').textContent(), WARM).toBe('v1');

    const v1 = page.locator('#timeline li[data-version="v1"]');
    const v2 = page.locator('#timeline li[data-version="v2"]');
    const v3 = page.locator('#timeline li[data-version="v3"]');
    await expect.poll(() => v1.locator('.badge.active').count(), WARM).toBe(1);
    expect(await v1.textContent()).toContain('READY');
    expect(await v1.textContent()).toMatch(/built in [\d.]+ (ms|s)/);
    expect(await v1.textContent()).toContain(`artists ${N_ARTISTS.toLocaleString('en-US')} × 16 cosine`);
    expect(await v1.textContent()).toMatch(/recall@10 [01]\.\d{3}/);
    expect(await v2.textContent()).toContain('READY');
    expect(await v2.locator('button.activate-btn').textContent()).toBe('Activate v2…');
    const failed = (await f.api<{ reason: string; status: string }>('/v1/spaces/music/versions/v3')).body;
    expect(failed.status).toBe('FAILED');
    expect(await v3.locator('.v-reason').textContent()).toBe(`FAILED: ${failed.reason}`);
    // Newest first, as the API lists them.
    expect(
      await page
        .locator('#timeline li.version')
        .evaluateAll((l) => l.map((x) => x.getAttribute('data-version'))),
    ).toEqual(['v3', 'v2', 'v1']);
    const rows = page.locator('#history tbody tr');
    expect(await rows.count()).toBe(1);
    expect(await rows.first().textContent()).toMatch(/^1∅ → v1.*build$/);
    await shot('explorer-1-versions.png');
  });

  it('finds an item by name from the keyboard and shows its neighbours as the API does', async () => {
    await open();
    // Keyboard only: the skip link leads to the search box.
    await page.keyboard.press('Tab');
    expect(await page.evaluate('document.activeElement.className')).toBe('skip');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate('document.activeElement.id'), WARM).toBe('item-search');
    expect(await page.locator('#field').inputValue()).toBe('name');
    await page.keyboard.type('radio');
    const options = page.locator('#search-results [role="option"]');
    await expect.poll(() => options.count(), WARM).toBe(2);
    expect(await options.first().textContent()).toContain('Radiohead');
    const t0 = performance.now();
    await page.keyboard.press('ArrowDown');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('[data-testid="item-title"]').textContent(), WARM).toBe('Radiohead');
    await expect.poll(() => columnIds('v1').then((ids) => ids.length), COLD).toBe(10);
    timings.itemMs = performance.now() - t0;
    const api = await similar('a1', 'v1');
    expect(await columnIds('v1')).toEqual(api.map((r) => r.id));
    const scores = await page.locator('#neighbours .column[data-version="v1"] td.num').allTextContents();
    expect(scores).toEqual(api.map((r) => r.score.toFixed(3)));
    expect(await page.locator('#item-card').textContent()).toContain('genre');
    expect(page.url()).toContain('item=a1');
    await shot('explorer-2-item.png');
  });

  it('compares the neighbours side by side with the candidate; overlap and the space summary match the API', async () => {
    await open('space=music&collection=artists&item=a1');
    await expect.poll(() => columnIds('v1').then((ids) => ids.length), COLD).toBe(10);
    const t0 = performance.now();
    await page.locator('#compare').selectOption('v2');
    await expect.poll(() => columnIds('v2').then((ids) => ids.length), COLD).toBe(10);
    timings.compareMs = performance.now() - t0;
    const [a, b] = [await similar('a1', 'v1'), await similar('a1', 'v2')];
    const ids = (rs: Result[]) => rs.map((r) => r.id);
    expect(await columnIds('v2')).toEqual(ids(b));
    const expected = overlapAt(ids(a), ids(b), 10);
    expect(expected).toBeGreaterThan(0);
    expect(expected).toBeLessThan(1);
    const shown = page.locator('[data-testid="overlap"]');
    expect(Number(await shown.getAttribute('data-value'))).toBeCloseTo(expected, 10);
    expect(await shown.textContent()).toBe(expected.toFixed(2));
    const entered = ids(b).filter((id) => !ids(a).includes(id));
    const left = ids(a).filter((id) => !ids(b).includes(id));
    const marked = (version: string, cls: string) =>
      page
        .locator(`#neighbours .column[data-version="${version}"] tbody tr.${cls}`)
        .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-id')));
    expect(await marked('v2', 'entered')).toEqual(entered);
    expect(await marked('v1', 'left')).toEqual(left);
    expect(await page.locator('#overlap').textContent()).toContain(
      `${entered.length} entered, ${left.length} left`,
    );

    // The space-level summary is the diff route's (what `vicinity diff` prints).
    const t1 = performance.now();
    await page.locator('#diff-run').click();
    const mean = page.locator(
      '[data-testid="diff-table"] tr[data-collection="artists"] [data-testid="mean-overlap"]',
    );
    await mean.waitFor();
    timings.diffMs = performance.now() - t1;
    const diff = (
      await f.api<{ collections: { collection: string; meanOverlap: number; sampled: number }[] }>(
        '/v1/spaces/music/diff?from=v1&to=v2&k=10&sample=200',
      )
    ).body;
    const artists = diff.collections.find((c) => c.collection === 'artists')!;
    expect(await mean.textContent()).toBe(artists.meanOverlap.toFixed(2));
    expect(artists.meanOverlap).toBeGreaterThan(0);
    expect(artists.meanOverlap).toBeLessThan(1);
    await shot('explorer-3-compare.png', page.locator('#item-panel'));
  });

  it('draws the map and highlights the selected item and its neighbours; hover names, click selects', async () => {
    await open('space=music&collection=artists&item=a1');
    const canvas = page.locator('#map');
    await expect.poll(() => canvas.getAttribute('data-points'), COLD).toBe(String(N_ARTISTS));
    await expect.poll(() => canvas.getAttribute('data-selected'), WARM).toBe('a1');
    await expect.poll(() => columnIds('v1').then((ids) => ids.length), COLD).toBe(10);
    expect(await canvas.getAttribute('data-highlighted')).toBe('11');
    expect(await page.locator('#colour').inputValue()).toBe('genre');
    // Points are really on the canvas: count coloured pixels.
    const coloured = (await page.evaluate(`(() => {
      const c = document.getElementById('map');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 0; i < d.length; i += 4) {
        const r = d[i], g = d[i + 1], b = d[i + 2], a = d[i + 3];
        if (a > 0 && (Math.abs(r - g) > 25 || Math.abs(g - b) > 25)) n++;
      }
      return n;
    })()`)) as number;
    expect(coloured).toBeGreaterThan(2000);

    const marks = JSON.parse((await canvas.getAttribute('data-marks')) ?? '[]') as {
      id: string;
      kind: string;
      x: number;
      y: number;
    }[];
    const neighbourIds = (await columnIds('v1')).sort();
    expect(
      marks
        .filter((m) => m.kind === 'neighbours')
        .map((m) => m.id)
        .sort(),
    ).toEqual(neighbourIds);
    const me = marks.find((m) => m.kind === 'selected')!;
    expect(me.id).toBe('a1');
    await canvas.scrollIntoViewIfNeeded();
    const box = (await canvas.boundingBox())!;
    await page.mouse.move(box.x + me.x, box.y + me.y);
    await expect.poll(() => page.locator('#map-hover').textContent(), WARM).toBe('Radiohead (a1)');
    await shot('explorer-4-map.png', page.locator('#map-panel'));

    // Clicking a neighbour selects it: the item, its neighbours and the highlight follow.
    const other =
      marks.find((m) => m.kind === 'neighbours' && Math.hypot(m.x - me.x, m.y - me.y) > 12) ?? marks[1]!;
    await page.mouse.click(box.x + other.x, box.y + other.y);
    await expect.poll(() => canvas.getAttribute('data-selected'), WARM).not.toBe('a1');
    const picked = (await canvas.getAttribute('data-selected'))!;
    const item = (
      await f.api<{ metadata: { name: string } }>(`/v1/spaces/music/collections/artists/items/${picked}`)
    ).body;
    await expect
      .poll(() => page.locator('[data-testid="item-title"]').textContent(), WARM)
      .toBe(item.metadata.name);
    await expect
      .poll(async () => (await columnIds('v1')).join(), WARM)
      .toBe((await similar(picked, 'v1')).map((r) => r.id).join());
  });

  it('activates from the page with compare-and-swap: a conflict shows who moved the pointer', async () => {
    const space = await copyOfMusic();
    await open(`space=${space}`);
    await expect.poll(() => page.locator('[data-testid="active-version"]').textContent(), COLD).toBe('v1');
    // Someone else moves the pointer twice with the CLI while the page still shows generation 1.
    const act = (path: string, body: unknown) =>
      f.api<{ pointer: { generation: number; version: string; changedBy: string } }>(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    expect(
      (await act(`/v1/spaces/${space}/activate`, { version: 'v2', expectedGeneration: 1, by: 'cli' })).status,
    ).toBe(200);
    expect((await act(`/v1/spaces/${space}/rollback`, { expectedGeneration: 2, by: 'cli' })).status).toBe(
      200,
    );
    expect(await page.locator('[data-testid="active-version"]').textContent()).toBe('v1');

    allowedErrors = [/status of 409/];
    expectedFailures = [`409 POST /v1/spaces/${space}/activate`];
    await page.locator('#timeline li[data-version="v2"] button.activate-btn').focus();
    await page.keyboard.press('Enter');
    await page.locator('#act-dialog[open]').waitFor();
    expect(await page.evaluate('document.activeElement.id')).toBe('act-confirm');
    await page.keyboard.press('Enter');
    const error = page.locator('#act-error');
    await error.waitFor({ state: 'visible' });
    expect(await error.getAttribute('data-conflict')).toBe('cli');
    expect(await error.textContent()).toMatch(
      /someone else moved the pointer first.*generation 3, active v1, changed by cli/,
    );
    // The page reloaded what it shows: the CLI's two switches are in the history now.
    await expect.poll(() => page.locator('#history tbody tr').count(), WARM).toBe(3);
    await shot('explorer-5-conflict.png');
    // Nothing changed on the server.
    expect(
      (await f.api<{ pointer: { generation: number } }>(`/v1/spaces/${space}`)).body.pointer.generation,
    ).toBe(3);

    // Confirming again goes ahead from the generation the page now knows.
    await page.keyboard.press('Enter');
    await page.locator('#act-dialog').waitFor({ state: 'hidden' });
    await expect.poll(() => page.locator('[data-testid="active-version"]').textContent(), WARM).toBe('v2');
    const after = (
      await f.api<{ pointer: { version: string; generation: number; changedBy: string } }>(
        `/v1/spaces/${space}`,
      )
    ).body.pointer;
    expect(after).toMatchObject({ version: 'v2', generation: 4, changedBy: 'page' });
    expect(await page.locator('#history tbody tr').first().textContent()).toMatch(/^4v1 → v2.*page$/);
    expect(await page.locator('#notice').textContent()).toContain('v2 is active');

    // And back: roll back from the page.
    await page.locator('#rollback').click();
    await page.locator('#act-dialog[open]').waitFor();
    await page.locator('#act-confirm').click();
    await page.locator('#act-dialog').waitFor({ state: 'hidden' });
    await expect.poll(() => page.locator('[data-testid="active-version"]').textContent(), WARM).toBe('v1');
    expect(
      (
        await f.api<{ pointer: { version: string; generation: number; changedBy: string } }>(
          `/v1/spaces/${space}`,
        )
      ).body.pointer,
    ).toMatchObject({
      version: 'v1',
      generation: 5,
      changedBy: 'page',
    });
    await shot('explorer-6-after-rollback.png', page, true);
  });

  it('shows a user with the seen items and recommendations in another collection, as the API does', async () => {
    await open('space=music&collection=users&item=u5');
    await expect.poll(() => page.locator('[data-testid="item-title"]').textContent(), COLD).toBe('u5');
    const recs = page.locator('#recs .recs-list li');
    await expect.poll(() => recs.count(), COLD).toBe(10);
    expect(await page.locator('#rec-target').inputValue()).toBe('artists');
    expect(await page.locator('#rec-seen').isChecked()).toBe(true);
    const user = (
      await f.api<{ metadata: { seen: string[] } }>('/v1/spaces/music/collections/users/items/u5')
    ).body;
    const api = (
      await f.api<{ results: Result[] }>(
        '/v1/spaces/music/collections/users/items/u5/similar?target=artists&k=10&excludeSeen=true&version=v1',
      )
    ).body.results;
    const shown = await recs.evaluateAll((l) => l.map((x) => x.getAttribute('data-id')));
    expect(shown).toEqual(api.map((r) => r.id));
    for (const seen of user.metadata.seen) expect(shown).not.toContain(seen);
    expect(await page.locator('#item-card').textContent()).toContain(user.metadata.seen[0]);
    await shot('explorer-8-user.png', page.locator('#item-panel'));
  });

  it('lists the space erasures with their status, as the API does', async () => {
    // On a copy: an erasure changes what every other test's answers hold.
    const space = await copyOfMusic();
    const erased = await f.api<{ erasures: unknown[] }>(`/v1/spaces/${space}/collections/artists/items/a7`, {
      method: 'DELETE',
      body: JSON.stringify({ by: 'dpo', reason: 'GDPR art. 17', ids: ['a9'] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(erased.status).toBe(202);
    await open(`space=${space}`);
    const rows = page.locator('#erasures tbody tr');
    await expect.poll(() => rows.count(), WARM).toBe(2);
    const texts = await rows.allTextContents();
    for (const [i, id] of ['a7', 'a9'].entries()) {
      expect(texts[i]).toContain(`artists${id}`);
      expect(texts[i]).toContain('erased — purge pending');
      expect(texts[i]).toContain('dpo — GDPR art. 17');
      expect(texts[i]).toContain('not checked yet');
    }
    expect(await page.locator('#erasures-note').textContent()).toBe(
      '2 not yet purged from stored snapshots (answers leave them out already).',
    );
    // The space without erasures says so.
    await open('space=music');
    await expect
      .poll(() => page.locator('#erasures tbody').textContent(), WARM)
      .toBe('No erasures in this space.');
    await shot('explorer-9-erasures.png', page.locator('#versions-panel'));
  });

  it('works on a narrow window without sideways scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await open('space=music&collection=artists&item=a1&compare=v2');
    await expect.poll(() => columnIds('v2').then((ids) => ids.length), COLD).toBe(10);
    const [scrollWidth, innerWidth] = (await page.evaluate(
      '[document.documentElement.scrollWidth, window.innerWidth]',
    )) as [number, number];
    expect(scrollWidth).toBeLessThanOrEqual(innerWidth);
    await expect.poll(() => page.locator('#map').getAttribute('data-points'), COLD).toBe(String(N_ARTISTS));
    await shot('explorer-7-narrow.png', page, true);

    await page.setViewportSize({ width: 1280, height: 800 });
    await open('space=music&collection=artists&item=a1&compare=v2');
    await expect.poll(() => page.locator('#map').getAttribute('data-highlighted'), COLD).toBe('11');
    await page.locator('#diff-run').click();
    await page.locator('[data-testid="diff-table"]').waitFor();
    await shot('explorer-overview.png', page, true);
  });
});
