/**
 * Recommendations: the selected item's vector searched in another collection of the same version
 * (e.g. a user's nearest artists), leaving out what it has already seen when the release says how.
 */
import { ApiError, api, labelOf, type Result } from '../api';
import { byId, fill, fixed, h } from '../dom';
import { describe } from '../notice';
import { activeSummary, state } from '../state';

export function createRecs() {
  const recs = byId('recs');
  /** space/version pairs whose release names no seenField. */
  const seenUnsupported = new Set<string>();

  async function load(): Promise<void> {
    const { space, collection, item, k } = state;
    const active = activeSummary();
    if (!space || !collection || !item || !active) return;
    const own = active.collections?.[collection];
    const targets = Object.entries(active.collections ?? {})
      .filter(([n, c]) => n !== collection && c.dims === own?.dims)
      .map(([n]) => n)
      .sort();
    if (!targets.length) {
      fill(recs);
      return;
    }
    const prior = recs.querySelector<HTMLSelectElement>('#rec-target')?.value;
    const target = prior && targets.includes(prior) ? prior : (targets[0] as string);
    const seenBox = recs.querySelector<HTMLInputElement>('#rec-seen');
    const key = `${space}/${active.version}`;
    const excludeSeen = !seenUnsupported.has(key) && (seenBox ? seenBox.checked : true);
    let results: Result[] = [];
    let note = '';
    try {
      results = (
        await api.similar(space, collection, item.id, { k, target, excludeSeen, version: active.version })
      ).results;
    } catch (err) {
      if (excludeSeen && err instanceof ApiError && err.status === 400 && /seenField/.test(err.message)) {
        seenUnsupported.add(key);
        note = 'This release names no seenField, so nothing is left out.';
        results = (await api.similar(space, collection, item.id, { k, target, version: active.version }))
          .results;
      } else note = describe(err);
    }
    const select = h(
      'select',
      { id: 'rec-target', onchange: () => void load() },
      targets.map((t) => h('option', { value: t, selected: t === target }, t)),
    );
    const box = h('input', {
      type: 'checkbox',
      id: 'rec-seen',
      checked: excludeSeen,
      disabled: seenUnsupported.has(key),
      onchange: () => void load(),
    });
    fill(
      recs,
      h('h4', {}, 'Recommendations: nearest in ', h('label', { class: 'inline' }, select)),
      h('label', { class: 'inline' }, box, ' leave out what this item has already seen'),
      note ? h('p', { class: 'muted' }, note) : '',
      h(
        'ol',
        { class: 'recs-list' },
        results.map((r) =>
          h(
            'li',
            { 'data-id': r.id },
            labelOf(r.metadata) ?? r.id,
            h('span', { class: 'opt-id' }, `${r.id} · ${fixed(r.score)}`),
          ),
        ),
      ),
    );
  }

  return {
    load,
    clear(): void {
      fill(recs);
    },
  };
}
