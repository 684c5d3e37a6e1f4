/**
 * The explorer page: a space's versions and pointer history, an item's neighbours in the active
 * version side by side with another version, a 2-D map of a collection, and activate/rollback with
 * the API's compare-and-swap. Plain DOM; everything comes from the public HTTP API.
 */
import './styles.css';
import {
  ApiError,
  api,
  type Diff,
  type HistoryEntry,
  type Item,
  labelOf,
  overlapAt,
  type Point,
  type Pointer,
  type Projection,
  type Result,
  type SpaceDetail,
  type VersionSummary,
} from './api';
import { byId, count, debounce, duration, fill, fixed, h, pct, show, timeEl, when } from './dom';
import { MapView } from './map';

interface State {
  spaces: string[];
  space?: string;
  detail?: SpaceDetail;
  history: HistoryEntry[];
  collection?: string;
  field: string;
  /** Whether the user chose the search field (otherwise a name-like field is preferred). */
  fieldChosen: boolean;
  item?: Item;
  k: number;
  compare?: string;
  active?: string[];
  projection?: Projection;
  colour?: string;
}

const state: State = { spaces: [], history: [], field: 'id', fieldChosen: false, k: 10 };

const el = {
  space: byId<HTMLSelectElement>('space'),
  pointer: byId('pointer'),
  refresh: byId<HTMLButtonElement>('refresh'),
  notice: byId('notice'),
  rollbackBar: byId('rollback-bar'),
  timeline: byId<HTMLOListElement>('timeline'),
  history: byId<HTMLTableElement>('history'),
  collection: byId<HTMLSelectElement>('collection'),
  field: byId<HTMLSelectElement>('field'),
  search: byId<HTMLInputElement>('item-search'),
  results: byId<HTMLDivElement>('search-results'),
  itemCard: byId('item-card'),
  k: byId<HTMLSelectElement>('k'),
  compare: byId<HTMLSelectElement>('compare'),
  overlap: byId('overlap'),
  neighbours: byId('neighbours'),
  recs: byId('recs'),
  diff: byId('diff'),
  colour: byId<HTMLSelectElement>('colour'),
  sample: byId<HTMLSelectElement>('sample'),
  map: byId<HTMLCanvasElement>('map'),
  mapCaption: byId('map-caption'),
  dialog: byId<HTMLDialogElement>('act-dialog'),
  actTitle: byId('act-title'),
  actText: byId('act-text'),
  actError: byId('act-error'),
  actForce: byId<HTMLInputElement>('act-force'),
  actForceLabel: byId('act-force-label'),
  actConfirm: byId<HTMLButtonElement>('act-confirm'),
};

const map = new MapView(
  el.map,
  (id) => void selectItem(id),
  (p) => fill(byId('map-hover'), p ? `${p.label ?? p.id}${p.label ? ` (${p.id})` : ''}` : ''),
);

// ------------------------------------------------------------------------------------------------
// Notices and errors

function notify(message: string, kind: 'info' | 'error' | 'ok' = 'info'): void {
  el.notice.hidden = false;
  el.notice.className = `notice ${kind}`;
  el.notice.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  fill(el.notice, message);
}

function describe(err: unknown): string {
  if (err instanceof ApiError) return `${err.problem.title ?? `HTTP ${err.status}`}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

/** The pointer as a sentence, for conflicts: who moved it, when, to what. */
function pointerSentence(p: Pointer): string {
  return `it is at generation ${p.generation}, active ${p.version ?? 'none'}, changed by ${p.changedBy ?? 'nobody'} at ${when(p.changedAt)}`;
}

// ------------------------------------------------------------------------------------------------
// URL state: #space=…&collection=…&item=…&compare=…&k=…

function readHash(): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(location.hash.replace(/^#/, '')));
}

function writeHash(): void {
  const p = new URLSearchParams();
  if (state.space) p.set('space', state.space);
  if (state.collection) p.set('collection', state.collection);
  if (state.item) p.set('item', state.item.id);
  if (state.compare) p.set('compare', state.compare);
  if (state.k !== 10) p.set('k', String(state.k));
  const next = `#${p.toString()}`;
  if (location.hash !== next) history.replaceState(null, '', next);
}

// ------------------------------------------------------------------------------------------------
// Space, versions, pointer history

const activeVersion = () => state.detail?.active?.version;
const generation = () => state.detail?.pointer?.generation ?? state.detail?.active?.generation ?? 0;
const versionOf = (v: string | undefined) => state.detail?.versions.find((x) => x.version === v);
const activeSummary = () => versionOf(activeVersion());

let pollTimer: ReturnType<typeof setTimeout> | undefined;

async function loadSpace(keepSelection = true): Promise<void> {
  const space = state.space;
  if (!space) return;
  const [detail, hist] = await Promise.all([api.space(space), api.history(space)]);
  if (state.space !== space) return;
  const activeChanged = detail.active?.version !== state.detail?.active?.version;
  state.detail = detail;
  state.history = hist.history;
  renderPointer();
  renderTimeline();
  renderHistory();
  renderCollections();
  renderCompareSelect();
  if (pollTimer) clearTimeout(pollTimer);
  if (detail.versions.some((v) => v.status === 'BUILDING'))
    pollTimer = setTimeout(() => void refresh(), 2000);
  if (activeChanged || !keepSelection) {
    await loadMap();
    if (state.item) await selectItem(state.item.id, state.collection);
  }
}

async function refresh(): Promise<void> {
  try {
    await loadSpace();
  } catch (err) {
    notify(describe(err), 'error');
  }
}

function renderPointer(): void {
  const d = state.detail;
  const p = d?.pointer;
  if (!d?.active) {
    fill(el.pointer, h('span', { class: 'muted' }, 'no active version yet'));
    return;
  }
  fill(
    el.pointer,
    'Active ',
    h('strong', { 'data-testid': 'active-version' }, d.active.version),
    ` · generation ${d.active.generation}`,
    p?.changedBy ? ` · by ${p.changedBy} ` : ' ',
    p?.changedAt ? timeEl(p.changedAt) : '',
  );
}

function qualityLine(v: VersionSummary): HTMLElement[] {
  return Object.entries(v.collections ?? {}).map(([name, c]) =>
    h(
      'li',
      {},
      h('strong', {}, name),
      ` ${count(c.count)} × ${c.dims} ${c.metric}`,
      c.recallAt10 !== undefined ? ` · recall@10 ${fixed(c.recallAt10)}` : '',
      c.overlapAt10 !== undefined
        ? ` · overlap@10 ${fixed(c.overlapAt10, 2)}${c.overlapWith ? ` vs ${c.overlapWith}` : ''}`
        : '',
      ` · M ${c.M}, ef ${c.ef}`,
    ),
  );
}

function renderTimeline(): void {
  const d = state.detail;
  if (!d) return;
  const active = d.active?.version;
  const previous = d.pointer?.previous ?? null;
  fill(
    el.rollbackBar,
    previous && active
      ? [
          h('span', {}, `Previous: ${previous}`),
          h(
            'button',
            {
              type: 'button',
              id: 'rollback',
              onclick: () => openAct({ kind: 'rollback', version: previous }),
            },
            `Roll back to ${previous}…`,
          ),
        ]
      : h('span', { class: 'muted' }, 'No previous version to roll back to.'),
  );
  fill(
    el.timeline,
    d.versions.map((v) => {
      const isActive = v.version === active;
      const isPrevious = v.version === previous;
      const ready = v.status === 'READY';
      return h(
        'li',
        {
          class: `version status-${v.status.toLowerCase()}${isActive ? ' is-active' : ''}`,
          'data-version': v.version,
        },
        h(
          'div',
          { class: 'v-head' },
          h('strong', {}, v.version),
          h('span', { class: `badge ${v.status.toLowerCase()}` }, v.status),
          isActive ? h('span', { class: 'badge active' }, 'active') : '',
          isPrevious ? h('span', { class: 'badge previous' }, 'previous') : '',
          state.compare === v.version ? h('span', { class: 'badge compare' }, 'comparing') : '',
        ),
        h(
          'div',
          { class: 'v-meta' },
          `release ${v.release} · created `,
          timeEl(v.createdAt),
          v.buildMs !== undefined ? ` · built in ${duration(v.buildMs)}` : '',
        ),
        v.collections ? h('ul', { class: 'v-cols' }, qualityLine(v)) : '',
        v.reason ? h('p', { class: 'v-reason' }, `FAILED: ${v.reason}`) : '',
        ready && !isActive
          ? h(
              'div',
              { class: 'v-actions' },
              h(
                'button',
                { type: 'button', class: 'compare-btn', onclick: () => void setCompare(v.version) },
                `Compare ${v.version}`,
              ),
              h(
                'button',
                {
                  type: 'button',
                  class: 'activate-btn',
                  onclick: () => openAct({ kind: 'activate', version: v.version }),
                },
                `Activate ${v.version}…`,
              ),
            )
          : '',
      );
    }),
  );
}

function renderHistory(): void {
  const body = el.history.tBodies[0]!;
  fill(
    body,
    state.history.length
      ? state.history.map((e) =>
          h(
            'tr',
            {},
            h('td', {}, String(e.generation)),
            h('td', {}, `${e.from ?? '∅'} → ${e.to}`),
            h('td', {}, timeEl(e.at)),
            h('td', {}, h('span', { class: `by by-${e.by}` }, e.by)),
          ),
        )
      : h('tr', {}, h('td', { colspan: 4, class: 'muted' }, 'The pointer has never moved.')),
  );
}

function collectionsOf(v: VersionSummary | undefined): string[] {
  return Object.keys(v?.collections ?? {}).sort();
}

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

function renderCompareSelect(): void {
  const d = state.detail;
  const others = (d?.versions ?? []).filter((v) => v.status === 'READY' && v.version !== d?.active?.version);
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

// ------------------------------------------------------------------------------------------------
// Item search (a combobox over the prefix route)

let searchAbort: AbortController | undefined;
let activeOption = -1;

function renderFields(fields: string[]): void {
  const options = ['id', ...fields.filter((f) => f !== 'id')];
  if (!state.fieldChosen || !options.includes(state.field))
    state.field = options.find((f) => ['name', 'title', 'label'].includes(f)) ?? 'id';
  fill(
    el.field,
    options.map((f) => h('option', { value: f, selected: f === state.field }, f)),
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
  searchAbort?.abort();
  searchAbort = new AbortController();
  try {
    const r = await api.prefix(space, collection, text, state.field, searchAbort.signal);
    renderFields(r.metadataFields);
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
                  void selectItem(x.id);
                },
              },
              h('span', { class: 'opt-value' }, x.value),
              x.value !== x.id ? h('span', { class: 'opt-id' }, x.id) : '',
            ),
          )
        : h('div', { class: 'muted', role: 'presentation' }, `No ${state.field} starts with “${text}”.`),
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
    if (id) void selectItem(id);
  }
});

// ------------------------------------------------------------------------------------------------
// The item: metadata, neighbours (side by side with another version), recommendations

let itemSeq = 0;

async function selectItem(id: string, collection = state.collection): Promise<void> {
  const { space } = state;
  const active = activeVersion();
  if (!space || !collection || !active) return;
  const seq = ++itemSeq;
  if (collection !== state.collection) {
    state.collection = collection;
    el.collection.value = collection;
    void loadMap();
  }
  try {
    const item = await api.item(space, collection, id, active);
    if (seq !== itemSeq) return;
    state.item = item;
    writeHash();
    renderItem(item);
    await loadNeighbours();
  } catch (err) {
    if (seq !== itemSeq) return;
    notify(describe(err), 'error');
  }
}

function renderItem(item: Item): void {
  const label = labelOf(item.metadata);
  const entries = Object.entries(item.metadata ?? {});
  fill(
    el.itemCard,
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

function neighbourTable(
  title: string,
  version: string,
  results: Result[] | undefined,
  other: Set<string> | undefined,
  markClass: string,
  markText: string,
  error?: string,
): HTMLElement {
  return h(
    'div',
    { class: 'column', 'data-version': version },
    h('h4', {}, title),
    error
      ? h('p', { class: 'muted' }, error)
      : h(
          'table',
          { class: 'neighbours' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              h('th', { scope: 'col' }, '#'),
              h('th', { scope: 'col' }, 'Item'),
              h('th', { scope: 'col' }, 'Score'),
            ),
          ),
          h(
            'tbody',
            {},
            (results ?? []).map((r, i) => {
              const marked = other !== undefined && !other.has(r.id);
              const label = labelOf(r.metadata);
              return h(
                'tr',
                { class: marked ? markClass : '', 'data-id': r.id },
                h('td', {}, String(i + 1)),
                h(
                  'td',
                  {},
                  h(
                    'button',
                    { type: 'button', class: 'link', onclick: () => void selectItem(r.id, state.collection) },
                    label ?? r.id,
                  ),
                  label ? h('span', { class: 'opt-id' }, r.id) : '',
                  marked ? h('span', { class: `mark ${markClass}` }, markText) : '',
                ),
                h('td', { class: 'num' }, fixed(r.score)),
              );
            }),
          ),
        ),
  );
}

async function loadNeighbours(): Promise<void> {
  const { space, collection, item, k, compare } = state;
  const active = activeVersion();
  if (!space || !collection || !item || !active) return;
  const seq = itemSeq;
  const [a, b] = await Promise.allSettled([
    api.similar(space, collection, item.id, { k, version: active }),
    compare ? api.similar(space, collection, item.id, { k, version: compare }) : Promise.resolve(undefined),
  ]);
  if (seq !== itemSeq) return;
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
    neighbourTable(`Active ${active}`, active, left, rightIds, 'left', 'left', undefined),
  ];
  if (compare) {
    columns.push(neighbourTable(`${compare}`, compare, right, leftIds, 'entered', 'entered', rightError));
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
  } else fill(el.overlap, compare ? '' : h('span', { class: 'muted' }, 'Choose a version to compare with.'));
  void loadRecs();
  void markMap();
}

async function setCompare(version: string | undefined): Promise<void> {
  state.compare = version || undefined;
  el.compare.value = state.compare ?? '';
  writeHash();
  renderTimeline();
  fill(el.diff, diffButton());
  await loadNeighbours();
}

// Recommendations: the item's vector searched in another collection of the same version.
const seenUnsupported = new Set<string>();

async function loadRecs(): Promise<void> {
  const { space, collection, item, k } = state;
  const active = activeSummary();
  if (!space || !collection || !item || !active) return;
  const own = active.collections?.[collection];
  const targets = Object.entries(active.collections ?? {})
    .filter(([n, c]) => n !== collection && c.dims === own?.dims)
    .map(([n]) => n)
    .sort();
  if (!targets.length) {
    fill(el.recs);
    return;
  }
  const prior = el.recs.querySelector<HTMLSelectElement>('#rec-target')?.value;
  const target = prior && targets.includes(prior) ? prior : (targets[0] as string);
  const seenBox = el.recs.querySelector<HTMLInputElement>('#rec-seen');
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
    { id: 'rec-target', onchange: () => void loadRecs() },
    targets.map((t) => h('option', { value: t, selected: t === target }, t)),
  );
  const box = h('input', {
    type: 'checkbox',
    id: 'rec-seen',
    checked: excludeSeen,
    disabled: seenUnsupported.has(key),
    onchange: () => void loadRecs(),
  });
  fill(
    el.recs,
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

// Space-level summary: the diff route, the same numbers `vicinity diff` prints.
function diffButton(): HTMLElement | string {
  const active = activeVersion();
  if (!state.compare || !active) return '';
  return h(
    'button',
    { type: 'button', id: 'diff-run', onclick: () => void loadDiff() },
    `Summarise ${active} → ${state.compare} over 200 sampled items`,
  );
}

async function loadDiff(): Promise<void> {
  const { space, compare, k } = state;
  const active = activeVersion();
  if (!space || !compare || !active) return;
  fill(el.diff, h('p', { class: 'muted' }, `Comparing ${active} and ${compare}…`));
  try {
    const d = await api.diff(space, { from: active, to: compare, k, sample: 200 });
    renderDiff(d);
  } catch (err) {
    fill(el.diff, diffButton(), h('p', { class: 'error' }, describe(err)));
  }
}

function renderDiff(d: Diff): void {
  fill(
    el.diff,
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
            ['Collection', 'Items compared', 'Mean overlap', 'Median', 'P10', 'Unchanged', 'Kept < half'].map(
              (t) => h('th', { scope: 'col' }, t),
            ),
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
                        { type: 'button', class: 'link', onclick: () => void selectItem(m.id) },
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

// ------------------------------------------------------------------------------------------------
// The map

let mapSeq = 0;

const LABEL_FIELDS = ['name', 'title', 'label'];
const COLOUR_HINT = /genre|tag|categor|type|kind|cluster|country|style|group/i;
/** The metadata fields of the collection the map last showed, to ask for exactly the fields it needs. */
let mapFields: { key: string; fields: string[] } | undefined;
let colourChosen = false;

async function loadMap(): Promise<void> {
  const { space, collection } = state;
  const active = activeVersion();
  if (!space || !collection || !active) return;
  const seq = ++mapSeq;
  const key = `${space}/${active}/${collection}`;
  const sample = Number(el.sample.value);
  const wanted = (all: string[]) => [
    ...all.filter((f) => LABEL_FIELDS.includes(f)),
    ...(state.colour && all.includes(state.colour) ? [state.colour] : []),
  ];
  fill(el.mapCaption, `Projecting ${collection} of ${active}…`);
  try {
    const known = mapFields?.key === key ? mapFields.fields : undefined;
    let p = await api.projection(space, collection, {
      sample,
      version: active,
      ...(known ? { fields: wanted(known) } : {}),
    });
    if (seq !== mapSeq) return;
    mapFields = { key, fields: p.metadataFields };
    renderFields(p.metadataFields);
    // Any field but the label can colour the map; arrays (e.g. tags) by their first value.
    const choices = p.metadataFields.filter((f) => !LABEL_FIELDS.includes(f));
    if (state.colour && !choices.includes(state.colour)) state.colour = undefined;
    if (!colourChosen) state.colour = choices.find((f) => COLOUR_HINT.test(f));
    if (state.colour && !p.fields.includes(state.colour)) {
      p = await api.projection(space, collection, {
        sample,
        version: active,
        fields: wanted(p.metadataFields),
      });
      if (seq !== mapSeq) return;
    }
    state.projection = p;
    fill(
      el.colour,
      h('option', { value: '', selected: !state.colour }, 'nothing'),
      choices.map((f) => h('option', { value: f, selected: f === state.colour }, f)),
    );
    map.show(p.points ?? [], state.colour);
    fill(
      el.mapCaption,
      `${count(p.sample)} of ${count(p.count)} ${collection} in ${p.version}, by PCA: the two axes hold ${pct(p.explained[0] ?? 0)} and ${pct(p.explained[1] ?? 0)} of the variance.`,
      state.colour
        ? ` Coloured by ${state.colour} (its nine most frequent values; a list by its first value).`
        : '',
      ' Hover a point to name it; click it to select it.',
    );
    await markMap();
  } catch (err) {
    if (seq === mapSeq) fill(el.mapCaption, h('span', { class: 'error' }, describe(err)));
  }
}

async function markMap(): Promise<void> {
  const { space, collection, item, projection } = state;
  const active = activeVersion();
  if (!space || !collection || !projection || projection.collection !== collection || !active) return;
  if (!item || item.collection !== collection) {
    map.mark(undefined, []);
    return;
  }
  const neighbours = state.active ?? [];
  const seq = mapSeq;
  try {
    const p = await api.projection(space, collection, {
      sample: Number(el.sample.value),
      ids: [item.id, ...neighbours],
      points: false,
      fields: projection.metadataFields.filter((f) => ['name', 'title', 'label'].includes(f)),
      version: active,
    });
    if (seq !== mapSeq) return;
    const extra = p.extra ?? [];
    const selected = extra.find((x) => x.id === item.id);
    map.mark(
      selected,
      extra.filter((x: Point) => x.id !== item.id),
    );
  } catch (err) {
    notify(describe(err), 'error');
  }
}

// ------------------------------------------------------------------------------------------------
// Act: activate or roll back, guarded by the generation the page last read

type Act = { kind: 'activate' | 'rollback'; version: string };
let pending: Act | undefined;

function actText(act: Act): string {
  const gen = generation();
  const from = activeVersion() ?? 'none';
  return act.kind === 'rollback'
    ? `Roll ${state.space} back from ${from} to ${act.version}? The page last saw the pointer at generation ${gen}; if anyone has moved it since, nothing changes and you will see who did.`
    : `Activate ${act.version} in ${state.space}, replacing ${from}? The page last saw the pointer at generation ${gen}; if anyone has moved it since, nothing changes and you will see who did.`;
}

function openAct(act: Act): void {
  pending = act;
  fill(el.actTitle, act.kind === 'rollback' ? `Roll back to ${act.version}` : `Activate ${act.version}`);
  fill(el.actText, actText(act));
  el.actError.hidden = true;
  el.actForceLabel.hidden = true;
  el.actForce.checked = false;
  el.actConfirm.disabled = false;
  el.dialog.showModal();
  el.actConfirm.focus();
}

el.actConfirm.addEventListener('click', async () => {
  const act = pending;
  const space = state.space;
  if (!act || !space) return;
  el.actConfirm.disabled = true;
  const expected = generation();
  try {
    const { pointer } =
      act.kind === 'rollback'
        ? await api.rollback(space, expected)
        : await api.activate(space, act.version, expected, el.actForce.checked);
    el.dialog.close();
    notify(
      `${pointer.version} is active in ${space} (generation ${pointer.generation}, by ${pointer.changedBy}).`,
      'ok',
    );
    await loadSpace();
  } catch (err) {
    el.actConfirm.disabled = false;
    el.actConfirm.focus();
    el.actError.hidden = false;
    if (err instanceof ApiError && err.status === 409 && err.problem.pointer) {
      fill(
        el.actError,
        h('strong', {}, 'Nothing changed: someone else moved the pointer first. '),
        `Now ${pointerSentence(err.problem.pointer)}. The page has reloaded; confirm again to go ahead from there.`,
      );
      el.actError.dataset.conflict = err.problem.pointer.changedBy ?? '';
      await loadSpace().catch(() => undefined);
      fill(el.actText, actText(act));
    } else if (
      err instanceof ApiError &&
      err.status === 422 &&
      Array.isArray(err.problem.incompatibilities)
    ) {
      el.actForceLabel.hidden = false;
      fill(el.actError, describe(err));
    } else {
      fill(el.actError, describe(err));
    }
  }
});

el.dialog.addEventListener('close', () => {
  pending = undefined;
});

// ------------------------------------------------------------------------------------------------
// Wiring

el.space.addEventListener('change', async () => {
  state.space = el.space.value;
  state.item = undefined;
  state.compare = undefined;
  state.collection = undefined;
  fill(el.itemCard);
  fill(el.neighbours);
  fill(el.overlap);
  fill(el.recs);
  fill(el.diff);
  writeHash();
  await loadSpace(false).catch((err) => notify(describe(err), 'error'));
});
el.refresh.addEventListener('click', () => void refresh());
el.collection.addEventListener('change', () => {
  state.collection = el.collection.value;
  state.fieldChosen = false;
  colourChosen = false;
  state.item = undefined;
  fill(el.itemCard);
  fill(el.neighbours);
  fill(el.overlap);
  fill(el.recs);
  writeHash();
  void loadMap();
});
el.field.addEventListener('change', () => {
  state.field = el.field.value;
  state.fieldChosen = true;
  if (el.search.value) runSearch(el.search.value);
});
el.k.addEventListener('change', () => {
  state.k = Number(el.k.value);
  writeHash();
  void loadNeighbours();
});
el.compare.addEventListener('change', () => void setCompare(el.compare.value));
el.colour.addEventListener('change', () => {
  state.colour = el.colour.value || undefined;
  colourChosen = true;
  void loadMap();
});
el.sample.addEventListener('change', () => void loadMap());

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
    if (wanted.k && [5, 10, 20, 50].includes(Number(wanted.k))) {
      state.k = Number(wanted.k);
      el.k.value = wanted.k;
    }
    state.item = undefined;
    state.compare = undefined;
    for (const x of [el.itemCard, el.neighbours, el.recs, el.diff]) fill(x);
    await loadSpace(false);
    if (wanted.compare && versionOf(wanted.compare)?.status === 'READY') await setCompare(wanted.compare);
    else fill(el.overlap, h('span', { class: 'muted' }, 'Choose a version to compare with.'));
    if (wanted.item) await selectItem(wanted.item);
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
