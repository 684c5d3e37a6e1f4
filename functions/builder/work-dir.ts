import { randomUUID } from 'node:crypto';
import { mkdir, readdir, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { Log } from '../core/ports';

/** Where builds keep their index files: one directory per invocation under `{cacheDir}/build`. */
export function workRoot(cacheDir: string): string {
  return join(cacheDir, 'build');
}

export interface WorkDir {
  readonly path: string;
  /** Stops marking it in use and removes it. */
  dispose(): Promise<void>;
}

/**
 * A fresh directory for one build invocation (a random name: two attempts in one warm environment —
 * the retry and a thawed earlier one — never share files), marked in use by touching it every
 * `touchMs` so that cleanStaleWorkDirs never takes it from a live build.
 */
export async function newWorkDir(root: string, touchMs: number, log: Log): Promise<WorkDir> {
  const path = join(root, randomUUID());
  await mkdir(path, { recursive: true });
  const touch = setInterval(
    () => {
      const now = new Date();
      utimes(path, now, now).catch(() => undefined);
    },
    Math.max(250, touchMs),
  );
  touch.unref();
  return {
    path,
    async dispose() {
      clearInterval(touch);
      await rm(path, { recursive: true, force: true }).catch((err) =>
        log.warn('could not remove the build work dir; the next build removes it', {
          workDir: path,
          error: String(err),
        }),
      );
    },
  };
}

/**
 * Removes work directories left by earlier invocations that died (timeout, kill, OOM) — only those
 * untouched for `olderThanMs` (a live build touches its own well within that) — so their files neither
 * fill /tmp nor make the next build's disk check refuse a release that fits. Returns what it removed.
 */
export async function cleanStaleWorkDirs(
  root: string,
  olderThanMs: number,
  log: Log,
  now = Date.now(),
): Promise<string[]> {
  const entries = await readdir(root, { withFileTypes: true }).catch(() => []);
  const removed: string[] = [];
  for (const e of entries) {
    const path = join(root, e.name);
    const s = await stat(path).catch(() => undefined);
    if (!s || now - s.mtimeMs < olderThanMs) continue;
    await rm(path, { recursive: true, force: true }).catch(() => undefined);
    removed.push(path);
  }
  if (removed.length) log.warn('removed work dirs of earlier builds that died', { removed });
  return removed;
}
