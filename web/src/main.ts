// web/src: the explorer page (plain DOM + Chart.js); main.ts only wires the panels in panels/.
// It may import only the public HTTP API, through api.ts: nothing from functions/ or the server.
/**
 * The explorer page: a space's versions and pointer history, an item's neighbours in the active
 * version side by side with another version, a 2-D map of a collection, and activate/rollback with
 * the API's compare-and-swap. Each panel is a module in panels/ that owns its elements and reads the
 * shared state (state.ts); panels never import each other: what one does to another goes through the
 * callbacks wired here. This file also owns the header (space select, refresh) and the URL's hash.
 */
import './styles.css';
import { api } from './api';
import { byId, fill, h } from './dom';
import { describe, notify } from './notice';
import { createAct } from './panels/act';
import { createCompare } from './panels/compare';
import { createDiff } from './panels/diff';
import { createErasures } from './panels/erasures';
import { createItem } from './panels/item';
import { createMap } from './panels/map';
import { createRecs } from './panels/recs';
import { createSearch } from './panels/search';
import { createVersions } from './panels/versions';
import { readHash, state, versionOf, writeHash } from './state';

const select = (id: string) => void item.select(id);

const versions = createVersions({
  compare: (version) => void compare.set(version),
  activate: (version) => act.activate(version),
  rollback: (version) => act.rollback(version),
});
const search = createSearch({
  select,
  collectionChanged: () => {
    map.resetColour();
    state.item = undefined;
    item.clear();
    compare.clear();
    recs.clear();
    writeHash();
    void map.load();
  },
});
const item = createItem({
  collectionSwitched: () => {
    search.showCollection();
    void map.load();
  },
  selected: () => compare.loadNeighbours(),
});
const compare = createCompare({
  select,
  itemSeq: () => item.seq(),
  compareChanged: () => {
    versions.renderTimeline();
    diff.offer();
  },
  neighboursShown: () => {
    void recs.load();
    void map.mark();
  },
});
const recs = createRecs();
const diff = createDiff({ select });
const map = createMap({ select, fields: (fields) => search.renderFields(fields) });
const act = createAct({ reload: () => loadSpace() });
const erasures = createErasures();

// ------------------------------------------------------------------------------------------------
// The space: versions, history, pointer; polled while a version is BUILDING

const el = {
  space: byId<HTMLSelectElement>('space'),
  refresh: byId<HTMLButtonElement>('refresh'),
};
let pollTimer: ReturnType<typeof setTimeout> | undefined;

async function loadSpace(keepSelection = true): Promise<void> {
  const space = state.space;
  if (!space) return;
  const [detail, hist] = await Promise.all([api.space(space), api.history(space)]);
  if (state.space !== space) return;
  const activeChanged = detail.active?.version !== state.detail?.active?.version;
  state.detail = detail;
  state.history = hist.history;
  versions.render();
  void erasures.load();
  search.renderCollections();
  compare.renderSelect();
  if (pollTimer) clearTimeout(pollTimer);
  if (detail.versions.some((v) => v.status === 'BUILDING'))
    pollTimer = setTimeout(() => void refresh(), 2000);
  if (activeChanged || !keepSelection) {
    await map.load();
    if (state.item) await item.select(state.item.id, state.collection);
  }
}

async function refresh(): Promise<void> {
  try {
    await loadSpace();
  } catch (err) {
    notify(describe(err), 'error');
  }
}

el.space.addEventListener('change', async () => {
  state.space = el.space.value;
  state.item = undefined;
  state.compare = undefined;
  state.collection = undefined;
  item.clear();
  compare.clear();
  recs.clear();
  diff.clear();
  writeHash();
  await loadSpace(false).catch((err) => notify(describe(err), 'error'));
});
el.refresh.addEventListener('click', () => void refresh());

// ------------------------------------------------------------------------------------------------
// Start, and follow the URL's hash

/** Shows what the URL's hash names: on load, and when the hash is edited or the user goes back. */
async function applyHash(wanted: Record<string, string>): Promise<void> {
  document.body.dataset.ready = 'loading';
  try {
    const space =
      wanted.space && state.spaces.includes(wanted.space) ? wanted.space : (state.space ?? state.spaces[0]);
    if (space !== state.space) state.collection = undefined;
    state.space = space;
    el.space.value = space ?? '';
    if (wanted.collection) state.collection = wanted.collection;
    if (wanted.k && [5, 10, 20, 50].includes(Number(wanted.k))) compare.setK(wanted.k);
    state.item = undefined;
    state.compare = undefined;
    item.clear();
    compare.clear(false);
    recs.clear();
    diff.clear();
    await loadSpace(false);
    if (wanted.compare && versionOf(wanted.compare)?.status === 'READY') await compare.set(wanted.compare);
    else compare.hint();
    if (wanted.item) await item.select(wanted.item);
    document.body.dataset.ready = 'true';
  } catch (err) {
    notify(describe(err), 'error');
    document.body.dataset.ready = 'error';
  }
}

async function start(): Promise<void> {
  try {
    const { spaces } = await api.spaces();
    state.spaces = spaces.map((s) => s.space);
    if (!state.spaces.length) {
      notify('No spaces yet: publish a release (see the README), then reload the page.');
      document.body.dataset.ready = 'true';
      return;
    }
    fill(
      el.space,
      state.spaces.map((s) => h('option', { value: s }, s)),
    );
  } catch (err) {
    notify(describe(err), 'error');
    document.body.dataset.ready = 'error';
    return;
  }
  await applyHash(readHash());
  // writeHash uses replaceState, which fires no hashchange: this only sees edits, links and Back.
  window.addEventListener('hashchange', () => void applyHash(readHash()));
}

void start();
