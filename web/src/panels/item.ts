/** The item card: selecting an item (from search, map, neighbours or diff) and showing its metadata. */
import { api, type Item, labelOf } from '../api';
import { byId, fill, h, show } from '../dom';
import { describe, notify } from '../notice';
import { activeVersion, state, writeHash } from '../state';

export interface ItemDeps {
  /** The item is in another collection than the one shown: state.collection has switched to it. */
  collectionSwitched(): void;
  /** state.item is set and its card drawn: load what depends on it (neighbours). */
  selected(): Promise<void>;
}

export function createItem(deps: ItemDeps) {
  const card = byId('item-card');
  /** Bumped by every selection, so that late answers for an earlier one are dropped. */
  let seq = 0;

  function render(item: Item): void {
    const label = labelOf(item.metadata);
    const entries = Object.entries(item.metadata ?? {});
    fill(
      card,
      h(
        'div',
        { class: 'item-head' },
        h('h3', { 'data-testid': 'item-title' }, label ?? item.id),
        h('span', { class: 'muted' }, `${item.collection} · id ${item.id} · ${item.version}`),
      ),
      entries.length
        ? h(
            'dl',
            { class: 'meta' },
            entries.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, show(v))]),
          )
        : h('p', { class: 'muted' }, 'No metadata.'),
    );
  }

  async function select(id: string, collection = state.collection): Promise<void> {
    const { space } = state;
    const active = activeVersion();
    if (!space || !collection || !active) return;
    const mine = ++seq;
    if (collection !== state.collection) {
      state.collection = collection;
      deps.collectionSwitched();
    }
    try {
      const item = await api.item(space, collection, id, active);
      if (mine !== seq) return;
      state.item = item;
      writeHash();
      render(item);
      await deps.selected();
    } catch (err) {
      if (mine !== seq) return;
      notify(describe(err), 'error');
    }
  }

  return {
    select,
    /** The current selection's number: an answer started under another is stale. */
    seq: () => seq,
    clear(): void {
      fill(card);
    },
  };
}
