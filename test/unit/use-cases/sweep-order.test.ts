/**
 * The sweep's order on the in-memory ports: every space's cheap duties (abandoned builds, dead
 * retention runs, lost activations) come before any purge, so a long purge of one space never
 * starves another space's duties.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { claimVersion } from '../../../functions/builder/claim';
import { sweep } from '../../../functions/sweeper/sweep';
import { type Harness, harness, jsonl, recordingLog } from '../../support/memory/harness';

const NOW = new Date('2026-11-30T12:00:00.000Z');
const releaseJson = { collections: { items: { file: 'items.jsonl', metric: 'cosine' } }, activate: true };

describe('sweep order', () => {
  let h: Harness | undefined;
  let workDir: string | undefined;
  afterEach(async () => {
    await h?.dispose();
    if (workDir) await rm(workDir, { recursive: true, force: true });
  });

  it('fails every space’s abandoned builds before it purges any space', async () => {
    h = await harness();
    workDir = await mkdtemp(join(tmpdir(), 'vicinity-sweep-order-'));
    // Listed first: a space with a purge to do.
    await h.build(await h.publish('aa', 'r1', { 'items.jsonl': jsonl('i', 40, 1) }, releaseJson));
    await h.registry.recordErasures('aa', [
      {
        space: 'aa',
        collection: 'items',
        id: 'i1',
        status: 'ERASED',
        erasedAt: NOW.toISOString(),
        by: 'dpo',
      },
    ]);
    // Listed second: an abandoned build.
    const lost = await h.publish('bb', 'lost', { 'items.jsonl': jsonl('i', 30, 1) }, releaseJson);
    await claimVersion(h.registry, lost, new Date(NOW.getTime() - 2 * 3_600_000));
    expect(await h.registry.listSpaces()).toEqual(['aa', 'bb']);

    const log = recordingLog();
    const report = await sweep({
      ...h.deps({ log }),
      log,
      now: () => NOW,
      staleMs: 3_600_000,
      graceMs: 0,
      workDir,
    });
    expect(report.failed.map((f) => f.space)).toEqual(['bb']);
    expect(report.erasure.purged).toBe(1);
    const messages = log.lines.map((l) => l.message);
    const failed = messages.indexOf('sweeper FAILED an abandoned build');
    const purged = messages.indexOf('snapshot purged of erased ids');
    expect(failed).toBeGreaterThanOrEqual(0);
    expect(purged).toBeGreaterThan(failed);
  });
});
