/**
 * Versions panel: the pointer in the header, the rollback bar, the versions timeline (status,
 * quality, compare and activate buttons) and the pointer's history.
 */
import type { VersionSummary } from '../api';
import { byId, count, duration, fill, fixed, h, timeEl } from '../dom';
import { state } from '../state';

export interface VersionsDeps {
  /** Compare button: show this version's neighbours beside the active one's. */
  compare(version: string): void;
  /** Activate and rollback buttons: open the confirmation dialog. */
  activate(version: string): void;
  rollback(version: string): void;
}

export function createVersions(deps: VersionsDeps) {
  const el = {
    pointer: byId('pointer'),
    rollbackBar: byId('rollback-bar'),
    timeline: byId<HTMLOListElement>('timeline'),
    history: byId<HTMLTableElement>('history'),
  };

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
        ` · M ${c.M}, ef ${c.ef}${c.efSource === 'tuned' ? ` (tuned to ${c.recallTarget})` : ''}`,
        c.recallCurve?.length ? curveLine(c) : '',
      ),
    );
  }

  /** The quality gate's ef → recall@10 curve, the serving ef in bold. */
  function curveLine(c: NonNullable<VersionSummary['collections']>[string]): HTMLElement {
    return h(
      'div',
      { class: 'recall-curve', 'data-testid': 'recall-curve' },
      'recall@10 by ef: ',
      ...(c.recallCurve ?? []).flatMap((p, i) => [
        i ? ' · ' : '',
        h(
          p.ef === c.ef ? 'strong' : 'span',
          { title: `${p.usPerQuery} µs per query on the build machine` },
          `${p.ef} → ${fixed(p.recall)}`,
        ),
      ]),
      c.recallTargetMet === false ? ' (target not reached)' : '',
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
                onclick: () => deps.rollback(previous),
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
                  { type: 'button', class: 'compare-btn', onclick: () => deps.compare(v.version) },
                  `Compare ${v.version}`,
                ),
                h(
                  'button',
                  {
                    type: 'button',
                    class: 'activate-btn',
                    onclick: () => deps.activate(v.version),
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

  return {
    /** Pointer, timeline and history from state.detail and state.history. */
    render(): void {
      renderPointer();
      renderTimeline();
      renderHistory();
    },
    /** The timeline alone (its "comparing" badge follows state.compare). */
    renderTimeline,
  };
}
