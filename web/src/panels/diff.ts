/**
 * Space diff: active → compared version over sampled items, from the diff route (the same numbers
 * `vicinity diff` prints), with the items that changed most.
 */
import { api, type Diff } from '../api';
import { byId, count, fill, fixed, h, pct } from '../dom';
import { describe } from '../notice';
import { activeVersion, state } from '../state';

export interface DiffDeps {
  /** A most-changed item of the shown collection was clicked. */
  select(id: string): void;
}

export function createDiff(deps: DiffDeps) {
  const el = byId('diff');

  function button(): HTMLElement | string {
    const active = activeVersion();
    if (!state.compare || !active) return '';
    return h(
      'button',
      { type: 'button', id: 'diff-run', onclick: () => void load() },
      `Summarise ${active} → ${state.compare} over 200 sampled items`,
    );
  }

  async function load(): Promise<void> {
    const { space, compare, k } = state;
    const active = activeVersion();
    if (!space || !compare || !active) return;
    fill(el, h('p', { class: 'muted' }, `Comparing ${active} and ${compare}…`));
    try {
      const d = await api.diff(space, { from: active, to: compare, k, sample: 200 });
      render(d);
    } catch (err) {
      fill(el, button(), h('p', { class: 'error' }, describe(err)));
    }
  }

  function render(d: Diff): void {
    fill(
      el,
      h('h4', {}, `Space summary: ${d.from} → ${d.to} (k ${d.k}, sample ${d.sample})`),
      d.compatible
        ? ''
        : h('p', { class: 'error' }, `Not shape-compatible: ${(d.incompatibilities ?? []).join('; ')}`),
      h(
        'div',
        { class: 'scroll-x' },
        h(
          'table',
          { class: 'diff-table', 'data-testid': 'diff-table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              [
                'Collection',
                'Items compared',
                'Mean overlap',
                'Median',
                'P10',
                'Unchanged',
                'Kept < half',
              ].map((t) => h('th', { scope: 'col' }, t)),
            ),
          ),
          h(
            'tbody',
            {},
            d.collections.map((c) =>
              h(
                'tr',
                { 'data-collection': c.collection },
                h('td', {}, c.target ? `${c.collection} → ${c.target}` : c.collection),
                h('td', { class: 'num' }, `${count(c.sampled)} of ${count(c.inBoth)}`),
                h('td', { class: 'num', 'data-testid': 'mean-overlap' }, fixed(c.meanOverlap, 2)),
                h('td', { class: 'num' }, fixed(c.medianOverlap, 2)),
                h('td', { class: 'num' }, fixed(c.p10Overlap, 2)),
                h('td', { class: 'num' }, pct(c.unchanged)),
                h('td', { class: 'num' }, pct(c.mostlyChanged)),
              ),
            ),
          ),
        ),
      ),
      d.collections.map((c) =>
        c.mostChanged.length
          ? h(
              'details',
              {},
              h('summary', {}, `${c.collection}: the ${c.mostChanged.length} items that changed most`),
              h(
                'ul',
                { class: 'most-changed' },
                c.mostChanged.map((m) =>
                  h(
                    'li',
                    {},
                    c.collection === state.collection
                      ? h(
                          'button',
                          { type: 'button', class: 'link', onclick: () => deps.select(m.id) },
                          m.label ?? m.id,
                        )
                      : (m.label ?? m.id),
                    ` overlap ${fixed(m.overlap, 2)}`,
                  ),
                ),
              ),
            )
          : '',
      ),
      d.summary ? h('pre', { class: 'summary' }, d.summary) : '',
    );
  }

  return {
    /** The "Summarise" button for the active and compared versions (nothing when not comparing). */
    offer(): void {
      fill(el, button());
    },
    clear(): void {
      fill(el);
    },
  };
}
