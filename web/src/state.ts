/**
 * The page's state, shared by the panels: the space, its versions and history, the selected
 * collection and item, the version compared with, k. The URL's hash mirrors part of it.
 */
import type { HistoryEntry, Item, SpaceDetail } from './api';

export interface State {
  spaces: string[];
  space?: string;
  detail?: SpaceDetail;
  history: HistoryEntry[];
  collection?: string;
  item?: Item;
  k: number;
  compare?: string;
  /** The ids of the selected item's neighbours in the active version (the map marks them). */
  active?: string[];
}

export const state: State = { spaces: [], history: [], k: 10 };

export const activeVersion = () => state.detail?.active?.version;
export const generation = () => state.detail?.pointer?.generation ?? state.detail?.active?.generation ?? 0;
export const versionOf = (v: string | undefined) => state.detail?.versions.find((x) => x.version === v);
export const activeSummary = () => versionOf(activeVersion());

// URL state: #space=…&collection=…&item=…&compare=…&k=…

export function readHash(): Record<string, string> {
  return Object.fromEntries(new URLSearchParams(location.hash.replace(/^#/, '')));
}

export function writeHash(): void {
  const p = new URLSearchParams();
  if (state.space) p.set('space', state.space);
  if (state.collection) p.set('collection', state.collection);
  if (state.item) p.set('item', state.item.id);
  if (state.compare) p.set('compare', state.compare);
  if (state.k !== 10) p.set('k', String(state.k));
  const next = `#${p.toString()}`;
  if (location.hash !== next) history.replaceState(null, '', next);
}
