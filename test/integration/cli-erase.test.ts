/**
 * `vicinity erase`, `restore`, `erasures` and `delete-space` end to end against a local stack of their
 * own, run in-process through runCli as a user's shell would (VICINITY_HOME → local.json). Every test
 * works in a space of its own, so each runs alone and in any order.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferIo } from '../../cli/io';
import { runCli } from '../../cli/main';
import { MAX_ERASE_IDS } from '../../functions/core/erasure';
import { clusteredVectors, jsonlRows } from '../../local/synthetic';
import { type TestStack, testStack } from '../support/local';

const DIMS = 8;
const ITEMS = 60;

describe('vicinity erase / restore / delete-space against the local stack', () => {
  let s: TestStack;
  let work: string;
  let spaces = 0;
  const run = async (input: string[] | undefined, ...argv: string[]) => {
    const b = bufferIo({ ...process.env, VICINITY_HOME: s.home }, work, input);
    const code = await runCli(argv, b.io);
    return { code, out: b.stdout(), err: b.stderr() };
  };
  /** A space of its own with one active version of ITEMS items i0…. */
  const space = async (name: string) => {
    const sp = `${name}-${++spaces}`;
    const v = clusteredVectors(ITEMS, DIMS, 3, spaces);
    const ids = Array.from({ length: ITEMS }, (_, i) => `i${i}`);
    await s.publish(
      sp,
      'r1',
      { 'items.jsonl': jsonlRows(ids, v.vectors, DIMS) },
      {
        collections: { items: { file: 'items.jsonl', metric: 'cosine' } },
        activate: true,
      },
    );
    return sp;
  };
  const item = (sp: string, id: string) =>
    s.get(`/v1/spaces/${sp}/collections/items/items/${id}?consistency=strong`);
  const erasures = async (sp: string) =>
    (await s.get(`/v1/spaces/${sp}/erasures`)).body.erasures as {
      id: string;
      status: string;
      by: string;
      reason?: string;
    }[];

  beforeAll(async () => {
    [s, work] = await Promise.all([testStack(), mkdtemp(join(tmpdir(), 'vicinity-cli-erase-'))]);
  }, 60_000);
  afterAll(async () => {
    await s?.dispose();
    if (work) await rm(work, { recursive: true, force: true });
  });

  it('erases ids given as arguments: 404 at once, recorded with who and why', async () => {
    const sp = await space('args');
    expect((await item(sp, 'i1')).status).toBe(200);
    const r = await run(
      undefined,
      'erase',
      sp,
      'items',
      'i1',
      'i2',
      '--by',
      'dpo',
      '--reason',
      'GDPR art. 17',
    );
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`${sp}/items: 2 ids erased`);
    expect((await item(sp, 'i1')).status).toBe(404);
    expect((await item(sp, 'i2')).status).toBe(404);
    expect((await item(sp, 'i3')).status).toBe(200);
    const list = await erasures(sp);
    expect(list.map((e) => [e.id, e.status, e.by, e.reason])).toEqual([
      ['i1', 'ERASED', 'dpo', 'GDPR art. 17'],
      ['i2', 'ERASED', 'dpo', 'GDPR art. 17'],
    ]);
    const listed = await run(undefined, 'erasures', sp);
    expect(listed.out).toMatch(/items\/i1\tERASED\terased .* by dpo/);
  });

  it('erases thousands from --file in batches (comments and blank lines skipped, repeats once)', async () => {
    const sp = await space('file');
    const extra = Array.from({ length: MAX_ERASE_IDS + 40 - ITEMS }, (_, i) => `gone-${i}`);
    const ids = [...Array.from({ length: ITEMS }, (_, i) => `i${i}`), ...extra];
    const file = join(work, `${sp}.txt`);
    await writeFile(file, `# erasure batch 42\n${ids.join('\n')}\n\ni0\n`);
    const r = await run(undefined, 'erase', sp, 'items', '--file', file, '--json');
    expect(r.code, r.err).toBe(0);
    expect(r.err).toContain(`erased ${MAX_ERASE_IDS}/${ids.length}`);
    expect(r.err).toContain(`erased ${ids.length}/${ids.length}`);
    const out = JSON.parse(r.out) as { erasures: { id: string }[] };
    expect(out.erasures.map((e) => e.id).sort()).toEqual([...ids].sort());
    expect((await erasures(sp)).length).toBe(ids.length);
    expect((await item(sp, 'i59')).status).toBe(404);
    // A vector query still answers, with none of them.
    const q = await s.post(`/v1/spaces/${sp}/collections/items/query`, {
      vector: Array.from({ length: DIMS }, () => 1),
      k: 5,
      consistency: 'strong',
    });
    expect(q.body.results).toEqual([]);
  });

  it('refuses an erase with no ids, naming --file', async () => {
    const sp = await space('none');
    const r = await run(undefined, 'erase', sp, 'items');
    expect(r.code).toBe(1);
    expect(r.err).toContain('no ids to erase');
    expect(r.err).toContain('--file');
  });

  it('restores an erasure, and reports a restore of an id never erased', async () => {
    const sp = await space('restore');
    expect((await run(undefined, 'erase', sp, 'items', 'i4')).code).toBe(0);
    const r = await run(undefined, 'restore', sp, 'items', 'i4', '--by', 'dpo', '--reason', 're-consent');
    expect(r.code, r.err).toBe(0);
    expect(r.out).toContain(`${sp}/items/i4: restored`);
    expect((await erasures(sp)).map((e) => [e.id, e.status])).toEqual([['i4', 'RESTORED']]);
    const never = await run(undefined, 'restore', sp, 'items', 'i5');
    expect(never.code).not.toBe(0);
    expect(never.err).toContain('No erasure of "i5"');
  });

  it('delete-space refuses without the name typed again (no input, or a wrong name); deletes when it matches', async () => {
    const sp = await space('del');
    const none = await run(undefined, 'delete-space', sp);
    expect(none.code).toBe(1);
    expect(none.err).toContain('nothing was deleted');
    expect(none.err).toContain('--yes');
    const wrong = await run([`${sp}-typo`], 'delete-space', sp);
    expect(wrong.code).toBe(1);
    expect(wrong.err).toContain('the name did not match');
    expect((await s.get(`/v1/spaces/${sp}`)).status).toBe(200);

    const typed = await run([sp], 'delete-space', sp);
    expect(typed.code, typed.err).toBe(0);
    expect(typed.err).toContain(`Type its name to confirm`);
    expect(typed.out).toContain(`${sp}: deleted (answers 404 now)`);
    expect((await s.get(`/v1/spaces/${sp}`)).status).toBe(404);
  });

  it('delete-space --yes deletes without asking, inputs too with --include-inputs', async () => {
    const sp = await space('yes');
    const r = await run(undefined, 'delete-space', sp, '--yes', '--include-inputs');
    expect(r.code, r.err).toBe(0);
    expect(r.err).not.toContain('Type its name');
    expect(r.out).toContain('the sweeper removes its snapshots and uploads');
    expect((await s.get(`/v1/spaces/${sp}/versions`)).status).toBe(404);
    expect((await s.get(`/v1/spaces/${sp}/collections/items/items/i1?consistency=strong`)).status).toBe(404);
  });

  it('settings shows a space settings and sets deleteInputsAfterBuild; refuses a value that is not a boolean', async () => {
    const sp = await space('settings');
    const shown = await run(undefined, 'settings', sp);
    expect(shown.code, shown.err).toBe(0);
    expect(shown.out).toContain(`${sp}: deleteInputsAfterBuild=false`);
    const set = await run(undefined, 'settings', sp, '--delete-inputs-after-build', 'true');
    expect(set.code, set.err).toBe(0);
    expect(set.out).toContain(`${sp}: deleteInputsAfterBuild=true`);
    expect((await s.get(`/v1/spaces/${sp}`)).body.settings).toEqual({ deleteInputsAfterBuild: true });
    const bad = await run(undefined, 'settings', sp, '--delete-inputs-after-build', 'yes');
    expect(bad.code).toBe(1);
    expect(bad.err).toContain('takes true or false');
    expect((await s.get(`/v1/spaces/${sp}`)).body.settings).toEqual({ deleteInputsAfterBuild: true });
  });
});
