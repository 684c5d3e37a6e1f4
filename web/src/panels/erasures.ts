/**
 * The space's erasures (GET /v1/spaces/{space}/erasures): which ids are erased from which collection,
 * by whom and why, whether the stored snapshots are purged yet, and which uploads still hold the id.
 * An admin route: where the page's caller may not read it (403 in AWS without IAM), the panel says so
 * instead of raising an error.
 */
import { ApiError, api, type Erasure } from '../api';
import { byId, fill, h, timeEl } from '../dom';
import { describe, notify } from '../notice';
import { state } from '../state';

/** What the status column says: the state of the erasure at rest, in words. */
export function statusText(e: Pick<Erasure, 'status' | 'purgedAt' | 'restoredAt' | 'restoredBy'>): string {
  switch (e.status) {
    case 'ERASED':
      return 'erased — purge pending';
    case 'PURGED':
      return 'erased and purged';
    case 'RESTORED':
      return `restored${e.restoredBy ? ` by ${e.restoredBy}` : ''}`;
    default:
      return String(e.status);
  }
}

/** The uploads column: releases under incoming/ that still hold the id ('not checked yet' when unknown). */
export function incomingText(e: Pick<Erasure, 'incomingReleases'>): string {
  if (e.incomingReleases === undefined) return 'not checked yet';
  return e.incomingReleases.length ? e.incomingReleases.join(', ') : 'none';
}

/** The panel's rows, newest erasure first. */
export function erasureRows(erasures: readonly Erasure[]): HTMLTableRowElement[] {
  return [...erasures]
    .sort((a, b) => b.erasedAt.localeCompare(a.erasedAt) || a.id.localeCompare(b.id))
    .map((e) =>
      h(
        'tr',
        { 'data-status': e.status },
        h('td', {}, e.collection),
        h('td', {}, h('code', {}, e.id)),
        h('td', { class: `erasure-${e.status.toLowerCase()}` }, statusText(e)),
        h('td', {}, timeEl(e.erasedAt)),
        h('td', {}, e.by, e.reason ? h('span', { class: 'muted' }, ` — ${e.reason}`) : null),
        h('td', {}, incomingText(e)),
      ),
    );
}

export function createErasures() {
  const table = byId<HTMLTableElement>('erasures');
  const note = byId('erasures-note');
  let seq = 0;

  function render(erasures: readonly Erasure[]): void {
    fill(
      table.tBodies[0] as HTMLTableSectionElement,
      erasures.length
        ? erasureRows(erasures)
        : h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No erasures in this space.')),
    );
    const pending = erasures.filter((e) => e.status === 'ERASED').length;
    note.textContent = pending
      ? `${pending} not yet purged from stored snapshots (answers leave them out already).`
      : '';
  }

  return {
    render,
    async load(): Promise<void> {
      const space = state.space;
      if (!space) return;
      const mine = ++seq;
      try {
        const { erasures } = await api.erasures(space);
        if (mine === seq && state.space === space) render(erasures);
      } catch (err) {
        if (mine !== seq) return;
        fill(table.tBodies[0] as HTMLTableSectionElement);
        if (err instanceof ApiError && (err.status === 403 || err.status === 401)) {
          note.textContent = 'Erasures are an admin route: sign in with admin access to see them.';
          return;
        }
        notify(describe(err), 'error');
      }
    },
  };
}
