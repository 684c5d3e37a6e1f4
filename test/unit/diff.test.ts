import { describe, expect, it } from 'vitest';
import { parseDiffQuery } from '../../functions/common/params';
import { changeLevel, describeDiff, itemDiff, labelOf, summariseDiff } from '../../functions/core/diff';
import { BadRequestError } from '../../functions/core/errors';

const ids = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

describe('version diff arithmetic', () => {
  it('measures overlap@k and lists what was lost and gained, in list order', () => {
    const d = itemDiff({ id: 'x', from: ['a', 'b', 'c', 'd'], to: ['c', 'e', 'a', 'f'] }, 4);
    expect(d).toEqual({ id: 'x', overlap: 0.5, removed: ['b', 'd'], added: ['e', 'f'] });
    // Only the first k of each list count.
    expect(itemDiff({ id: 'x', from: ['a', 'b', 'z'], to: ['a', 'b', 'y'] }, 2).overlap).toBe(1);
  });

  it('summarises a sample: mean, median, p10, shares, histogram, most changed first', () => {
    const k = 10;
    const same = ids('n', 10);
    const pairs = [
      ...Array.from({ length: 7 }, (_, i) => ({ id: `same${i}`, from: same, to: same })),
      { id: 'half', from: same, to: [...same.slice(0, 5), ...ids('m', 5)] },
      { id: 'gone', from: same, to: ids('m', 10) },
      { id: 'most', from: same, to: [...same.slice(0, 1), ...ids('m', 9)] },
    ];
    const s = summariseDiff(pairs, k, 2);
    expect(s.sampled).toBe(10);
    expect(s.meanOverlap).toBeCloseTo((7 + 0.5 + 0 + 0.1) / 10, 6);
    expect(s.medianOverlap).toBe(1);
    expect(s.p10Overlap).toBe(0);
    expect(s.unchanged).toBe(0.7);
    expect(s.mostlyChanged).toBe(0.2);
    expect(s.histogram.map((h) => h.items)).toEqual([1, 1, 0, 0, 0, 1, 0, 0, 0, 0, 7]);
    expect(s.mostChanged.map((d) => [d.id, d.overlap])).toEqual([
      ['gone', 0],
      ['most', 0.1],
    ]);
    expect(s.mostChanged[0]?.removed).toHaveLength(10);
  });

  it('never lists unchanged items as changed, and an empty sample is no change', () => {
    const same = ['a', 'b'];
    expect(summariseDiff([{ id: 'x', from: same, to: same }], 2, 10).mostChanged).toEqual([]);
    const empty = summariseDiff([], 10);
    expect(empty).toMatchObject({ sampled: 0, meanOverlap: 1, unchanged: 1, mostlyChanged: 0 });
    expect(describeDiff('items', empty, 10, 0)).toMatch(/no item is in both versions/);
  });

  it('names the size of a change and writes one sentence per collection', () => {
    expect([1, 0.9, 0.6, 0.3, 0].map(changeLevel)).toEqual([
      'none',
      'small',
      'moderate',
      'large',
      'complete',
    ]);
    const text = describeDiff(
      'artists',
      { sampled: 200, meanOverlap: 0.62, medianOverlap: 0.6, unchanged: 0.05, mostlyChanged: 0.2 },
      10,
      17632,
    );
    expect(text).toBe(
      'artists: moderate change — mean overlap@10 0.62 (median 0.60) over 200 of 17632 items in both; 5% kept all 10 neighbours, 20% kept fewer than half',
    );
  });

  it('labels items by name, title or label', () => {
    expect(labelOf({ name: 'Radiohead', title: 'x' })).toBe('Radiohead');
    expect(labelOf({ title: 'Song' })).toBe('Song');
    expect(labelOf({ seen: ['1'] })).toBeUndefined();
    expect(labelOf(null)).toBeUndefined();
  });

  it('parses the query string of GET /diff with defaults and limits', () => {
    expect(parseDiffQuery({ to: 'v2' })).toEqual({ to: 'v2', sample: 200, k: 10, top: 10 });
    expect(
      parseDiffQuery({
        from: 'v1',
        to: 'v2',
        sample: '50',
        k: '5',
        top: '0',
        collection: 'users',
        target: 'items',
      }),
    ).toEqual({ from: 'v1', to: 'v2', sample: 50, k: 5, top: 0, collection: 'users', target: 'items' });
    for (const bad of [
      {},
      { to: 'v2', k: '0' },
      { to: 'v2', sample: '9999999' },
      { to: 'v2', k: 'ten' },
      { to: 'v2', sort: 'x' },
      { to: 'v2', target: 'items' },
    ]) {
      expect(() => parseDiffQuery(bad)).toThrow(BadRequestError);
    }
  });
});
