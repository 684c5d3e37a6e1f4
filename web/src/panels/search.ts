/**
 * Item search: the collection and search-field selects and a combobox over the prefix route
 * (arrow keys, Enter, Escape; a click or Enter selects the item).
 */
import { api, type VersionSummary } from '../api';
import { byId, debounce, fill, h } from '../dom';
import { describe, notify } from '../notice';
import { activeSummary, state } from '../state';

export interface SearchDeps {
  /** An item was chosen. */
  select(id: string): void;
  /** The user chose another collection (state.collection is already set). */
  collectionChanged(): void;
}

function collectionsOf(v: VersionSummary | undefined): string[] {
  return Object.keys(v?.collections ?? {}).sort();
}

export function createSearch(deps: SearchDeps) {
  const el = {
    collection: byId<HTMLSelectElement>('collection'),
    field: byId<HTMLSelectElement>('field'),
    search: byId<HTMLInputElement>('item-search'),
    results: byId<HTMLDivElement>('search-results'),
  };
  let field = 'id';
  /** Whether the user chose the search field (otherwise a name-like field is preferred). */
  let fieldChosen = false;
  let searchAbort: AbortController | undefined;
  let activeOption = -1;

  function renderCollections(): void {
    const names = collectionsOf(activeSummary());
    if (!state.collection || !names.includes(state.collection)) {
      // A collection with a readable label field is the better first view (artists before users).
      state.collection = names.find((n) => !/^users?$/.test(n)) ?? names[0];
    }
    fill(
      el.collection,
      names.map((n) => h('option', { value: n, selected: n === state.collection }, n)),
    );
  }

  function renderFields(fields: string[]): void {
    const options = ['id', ...fields.filter((f) => f !== 'id')];
    if (!fieldChosen || !options.includes(field))
      field = options.find((f) => ['name', 'title', 'label'].includes(f)) ?? 'id';
    fill(
      el.field,
      options.map((f) => h('option', { value: f, selected: f === field }, f)),
    );
  }

  function closeResults(): void {
    el.results.hidden = true;
    el.search.setAttribute('aria-expanded', 'false');
    el.search.removeAttribute('aria-activedescendant');
    activeOption = -1;
  }

  function moveOption(delta: number): void {
    const options = [...el.results.querySelectorAll<HTMLDivElement>('[role="option"]')];
    if (!options.length) return;
    activeOption = (activeOption + delta + options.length) % options.length;
    for (const [i, o] of options.entries()) o.setAttribute('aria-selected', String(i === activeOption));
    const current = options[activeOption]!;
    el.search.setAttribute('aria-activedescendant', current.id);
    current.scrollIntoView({ block: 'nearest' });
  }

  const runSearch = debounce(async (text: string) => {
    const { space, collection } = state;
    if (!space || !collection) return;
    // The API refuses an empty prefix (400): a cleared box just closes the list.
    if (text === '') {
      searchAbort?.abort();
      closeResults();
      return;
    }
    searchAbort?.abort();
    searchAbort = new AbortController();
    try {
      const r = await api.prefix(space, collection, text, field, searchAbort.signal);
      renderFields(r.metadataFields ?? []);
      activeOption = -1;
      fill(
        el.results,
        r.results.length
          ? r.results.map((x, i) =>
              h(
                'div',
                {
                  id: `opt-${i}`,
                  role: 'option',
                  'aria-selected': 'false',
                  'data-id': x.id,
                  onmousedown: (e: Event) => e.preventDefault(),
                  onclick: () => {
                    closeResults();
                    deps.select(x.id);
                  },
                },
                h('span', { class: 'opt-value' }, x.value),
                x.value !== x.id ? h('span', { class: 'opt-id' }, x.id) : '',
              ),
            )
          : h('div', { class: 'muted', role: 'presentation' }, `No ${field} starts with “${text}”.`),
        r.more ? h('div', { class: 'muted', role: 'presentation' }, 'More match: type more.') : '',
      );
      el.results.hidden = false;
      el.search.setAttribute('aria-expanded', 'true');
    } catch (err) {
      if ((err as Error).name !== 'AbortError') notify(describe(err), 'error');
    }
  }, 120);

  el.search.addEventListener('input', () => runSearch(el.search.value));
  el.search.addEventListener('focus', () => {
    if (el.search.value) runSearch(el.search.value);
  });
  el.search.addEventListener('blur', () => setTimeout(closeResults, 100));
  el.search.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowDown') {
      e.preventDefault();
      if (el.results.hidden) runSearch(el.search.value);
      else moveOption(1);
    } else if (e.key === 'ArrowUp') {
      e.preventDefault();
      moveOption(-1);
    } else if (e.key === 'Escape') {
      closeResults();
    } else if (e.key === 'Enter') {
      e.preventDefault();
      const options = [...el.results.querySelectorAll<HTMLDivElement>('[role="option"]')];
      const chosen = options[Math.max(activeOption, 0)];
      closeResults();
      const id = chosen?.dataset.id ?? el.search.value.trim();
      if (id) deps.select(id);
    }
  });
  el.field.addEventListener('change', () => {
    field = el.field.value;
    fieldChosen = true;
    if (el.search.value) runSearch(el.search.value);
  });
  el.collection.addEventListener('change', () => {
    state.collection = el.collection.value;
    fieldChosen = false;
    deps.collectionChanged();
  });

  return {
    /** The collection select from the active version's collections; picks one when needed. */
    renderCollections,
    /** The search-field select from a collection's metadata fields. */
    renderFields,
    /** Shows state.collection in the select (when something else switched it). */
    showCollection(): void {
      el.collection.value = state.collection ?? '';
    },
  };
}
