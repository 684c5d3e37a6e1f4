/**
 * Compare: the selected item's neighbours in the active version side by side with another READY
 * version (entered and left marked), their overlap@k, and the k and compare-with selects.
 */
import { api, labelOf, overlapAt, type Result } from '../api';
import { byId, fill, fixed, h } from '../dom';
import { describe, notify } from '../notice';
import { activeVersion, state, writeHash } from '../state';

export interface CompareDeps {
  /** A neighbour was clicked. */
  select(id: string): void;
  /** The selection's number (panels/item.ts): answers started under another are dropped. */
  itemSeq(): number;
  /** The compared version changed (state.compare is set): timeline badge, diff button. */
  compareChanged(): void;
  /** The active neighbours are shown (state.active is set): recommendations, map marks. */
  neighboursShown(): void;
}

export function createCompare(deps: CompareDeps) {
  const el = {
    k: byId<HTMLSelectElement>('k'),
    compare: byId<HTMLSelectElement>('compare'),
    overlap: byId('overlap'),
    neighbours: byId('neighbours'),
  };

  function renderSelect(): void {
    const d = state.detail;
    const others = (d?.versions ?? []).filter(
      (v) => v.status === 'READY' && v.version !== d?.active?.version,
    );
    if (state.compare && !others.some((v) => v.version === state.compare)) state.compare = undefined;
    const previous = d?.pointer?.previous;
    fill(
      el.compare,
      h('option', { value: '', selected: !state.compare }, 'nothing (active only)'),
      others.map((v) =>
        h(
          'option',
          { value: v.version, selected: v.version === state.compare },
          `${v.version}${v.version === previous ? ' (previous)' : Number(v.version.slice(1)) > Number((d?.active?.version ?? 'v0').slice(1)) ? ' (candidate)' : ''} — ${v.release}`,
        ),
      ),
    );
  }

  function table(
    title: string,
    version: string,
    results: Result[] | undefined,
    other: Set<string> | undefined,
    markClass: string,
    markText: string,
    error?: string,
  ): HTMLElement {
    const head = h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col' }, '#'),
        h('th', { scope: 'col' }, 'Item'),
        h('th', { scope: 'col' }, 'Score'),
      ),
    );
    const rows = (results ?? []).map((r, i) => {
      const marked = other !== undefined && !other.has(r.id);
      const label = labelOf(r.metadata);
      return h(
        'tr',
        { class: marked ? markClass : '', 'data-id': r.id },
        h('td', {}, String(i + 1)),
        h(
          'td',
          {},
          h('button', { type: 'button', class: 'link', onclick: () => deps.select(r.id) }, label ?? r.id),
          label ? h('span', { class: 'opt-id' }, r.id) : '',
          marked ? h('span', { class: `mark ${markClass}` }, markText) : '',
        ),
        h('td', { class: 'num' }, fixed(r.score)),
      );
    });
    return h(
      'div',
      { class: 'column', 'data-version': version },
      h('h4', {}, title),
      error
        ? h('p', { class: 'muted' }, error)
        : h('table', { class: 'neighbours' }, head, h('tbody', {}, rows)),
    );
  }

  async function loadNeighbours(): Promise<void> {
    const { space, collection, item, k, compare } = state;
    const active = activeVersion();
    if (!space || !collection || !item || !active) return;
    const seq = deps.itemSeq();
    const [a, b] = await Promise.allSettled([
      api.similar(space, collection, item.id, { k, version: active }),
      compare ? api.similar(space, collection, item.id, { k, version: compare }) : Promise.resolve(undefined),
    ]);
    if (seq !== deps.itemSeq()) return;
    if (a.status === 'rejected') {
      notify(describe(a.reason), 'error');
      return;
    }
    const left = a.value.results;
    state.active = left.map((r) => r.id);
    const right = b.status === 'fulfilled' ? b.value?.results : undefined;
    const rightError = b.status === 'rejected' ? describe(b.reason) : undefined;
    const leftIds = new Set(left.map((r) => r.id));
    const rightIds = right ? new Set(right.map((r) => r.id)) : undefined;
    const columns: HTMLElement[] = [
      table(`Active ${active}`, active, left, rightIds, 'left', 'left', undefined),
    ];
    if (compare) {
      columns.push(table(`${compare}`, compare, right, leftIds, 'entered', 'entered', rightError));
    }
    fill(el.neighbours, columns);
    el.neighbours.classList.toggle('two', columns.length === 2);
    if (compare && right) {
      const ov = overlapAt(
        left.map((r) => r.id),
        right.map((r) => r.id),
        k,
      );
      const entered = right.filter((r) => !leftIds.has(r.id)).length;
      const gone = left.filter((r) => !rightIds!.has(r.id)).length;
      fill(
        el.overlap,
        h('span', {}, `Overlap@${k} `),
        h('strong', { 'data-testid': 'overlap', 'data-value': String(ov) }, fixed(ov, 2)),
        ` between ${active} and ${compare}: ${entered} entered, ${gone} left.`,
      );
    } else
      fill(el.overlap, compare ? '' : h('span', { class: 'muted' }, 'Choose a version to compare with.'));
    deps.neighboursShown();
  }

  async function set(version: string | undefined): Promise<void> {
    state.compare = version || undefined;
    el.compare.value = state.compare ?? '';
    writeHash();
    deps.compareChanged();
    await loadNeighbours();
  }

  el.k.addEventListener('change', () => {
    state.k = Number(el.k.value);
    writeHash();
    void loadNeighbours();
  });
  el.compare.addEventListener('change', () => void set(el.compare.value));

  return {
    /** The compare-with select from state.detail's READY versions (drops a compare that is gone). */
    renderSelect,
    loadNeighbours,
    /** Compare the active version with this one ('' or undefined: with nothing). */
    set,
    /** k from the URL (one of the select's values). */
    setK(k: string): void {
      state.k = Number(k);
      el.k.value = k;
    },
    /** Empties the neighbour columns and, with `overlap`, the overlap line. */
    clear(overlap = true): void {
      fill(el.neighbours);
      if (overlap) fill(el.overlap);
    },
    /** The overlap line's hint when nothing is compared. */
    hint(): void {
      fill(el.overlap, h('span', { class: 'muted' }, 'Choose a version to compare with.'));
    },
  };
}
