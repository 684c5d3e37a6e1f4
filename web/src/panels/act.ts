/**
 * Activate or roll back, in a confirmation dialog, guarded by the pointer generation the page last
 * read (the API's compare-and-swap): a conflict says who moved the pointer, and the page reloads.
 */
import { ApiError, api, type Pointer } from '../api';
import { byId, fill, h, when } from '../dom';
import { describe, notify } from '../notice';
import { activeVersion, generation, state } from '../state';

export type Act = { kind: 'activate' | 'rollback'; version: string };

export interface ActDeps {
  /** Reloads the space (versions, pointer, history) after a move or a conflict. */
  reload(): Promise<void>;
}

/** The pointer as a sentence, for conflicts: who moved it, when, to what. */
function pointerSentence(p: Pointer): string {
  return `it is at generation ${p.generation}, active ${p.version ?? 'none'}, changed by ${p.changedBy ?? 'nobody'} at ${when(p.changedAt)}`;
}

function actText(act: Act): string {
  const gen = generation();
  const from = activeVersion() ?? 'none';
  return act.kind === 'rollback'
    ? `Roll ${state.space} back from ${from} to ${act.version}? The page last saw the pointer at generation ${gen}; if anyone has moved it since, nothing changes and you will see who did.`
    : `Activate ${act.version} in ${state.space}, replacing ${from}? The page last saw the pointer at generation ${gen}; if anyone has moved it since, nothing changes and you will see who did.`;
}

export function createAct(deps: ActDeps) {
  const el = {
    dialog: byId<HTMLDialogElement>('act-dialog'),
    title: byId('act-title'),
    text: byId('act-text'),
    error: byId('act-error'),
    force: byId<HTMLInputElement>('act-force'),
    forceLabel: byId('act-force-label'),
    confirm: byId<HTMLButtonElement>('act-confirm'),
  };
  let pending: Act | undefined;

  function open(act: Act): void {
    pending = act;
    fill(el.title, act.kind === 'rollback' ? `Roll back to ${act.version}` : `Activate ${act.version}`);
    fill(el.text, actText(act));
    el.error.hidden = true;
    el.forceLabel.hidden = true;
    el.force.checked = false;
    el.confirm.disabled = false;
    el.dialog.showModal();
    el.confirm.focus();
  }

  el.confirm.addEventListener('click', async () => {
    const act = pending;
    const space = state.space;
    if (!act || !space) return;
    el.confirm.disabled = true;
    const expected = generation();
    try {
      const { pointer } =
        act.kind === 'rollback'
          ? await api.rollback(space, expected)
          : await api.activate(space, act.version, expected, el.force.checked);
      el.dialog.close();
      notify(
        `${pointer.version} is active in ${space} (generation ${pointer.generation}, by ${pointer.changedBy}).`,
        'ok',
      );
      await deps.reload();
    } catch (err) {
      el.confirm.disabled = false;
      el.confirm.focus();
      el.error.hidden = false;
      if (err instanceof ApiError && err.status === 409 && err.problem.pointer) {
        fill(
          el.error,
          h('strong', {}, 'Nothing changed: someone else moved the pointer first. '),
          `Now ${pointerSentence(err.problem.pointer)}. The page has reloaded; confirm again to go ahead from there.`,
        );
        el.error.dataset.conflict = err.problem.pointer.changedBy ?? '';
        await deps.reload().catch(() => undefined);
        fill(el.text, actText(act));
      } else if (
        err instanceof ApiError &&
        err.status === 422 &&
        Array.isArray(err.problem.incompatibilities)
      ) {
        el.forceLabel.hidden = false;
        fill(el.error, describe(err));
      } else {
        fill(el.error, describe(err));
      }
    }
  });

  el.dialog.addEventListener('close', () => {
    pending = undefined;
  });

  return {
    activate: (version: string) => open({ kind: 'activate', version }),
    rollback: (version: string) => open({ kind: 'rollback', version }),
  };
}
