/** The notice bar under the header, and errors as sentences. */
import { ApiError } from './api';
import { byId, fill } from './dom';

const notice = byId('notice');

export function notify(message: string, kind: 'info' | 'error' | 'ok' = 'info'): void {
  notice.hidden = false;
  notice.className = `notice ${kind}`;
  notice.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  fill(notice, message);
}

export function describe(err: unknown): string {
  if (err instanceof ApiError) return `${err.problem.title ?? `HTTP ${err.status}`}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
