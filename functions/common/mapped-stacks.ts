/**
 * Readable stacks from a minified bundle without `--enable-source-maps`.
 *
 * With the flag, Node reads and JSON-parses the source map of every file it loads (the entry and each
 * static chunk), at every cold start, whether or not a stack is ever printed (docs/performance.md,
 * "Cold start"). `installMappedStacks`, which every bundle runs first (install-mapped-stacks.ts, injected
 * by infra/constructs/vicinity-function.ts's `bundleOptions`), defers all of that to the first stack that
 * is formatted: V8 calls `Error.prepareStackTrace` when an error's `stack` is first read (the error edge
 * logging a 500, the Lambda runtime logging a thrown error, Powertools' log location), and only then is
 * the map next to a frame's file (`index.mjs.map`, `chunks/….mjs.map`) read and decoded, once per file.
 * A frame keeps V8's text with its position replaced by the original one, e.g.
 * `at get (functions/adapters/s3-store.ts:88:13)`. Frames without a map next to their file (Node's own,
 * a file outside the bundle) keep their text.
 *
 * Nothing happens when Node already maps stacks (`--enable-source-maps`). Only the bundles run it: under
 * tsx or vitest (no bundle) stacks stay theirs.
 */
import { readFileSync } from 'node:fs';
import { SourceMap } from 'node:module';
import { fileURLToPath } from 'node:url';

const maps = new Map<string, SourceMap | null>();

/** The decoded map of a generated file, read on first use; null when it has none. */
function mapOf(file: string): SourceMap | null {
  let map = maps.get(file);
  if (map === undefined) {
    try {
      const path = file.startsWith('file:') ? fileURLToPath(file) : file;
      map = new SourceMap(JSON.parse(readFileSync(`${path}.map`, 'utf8')));
    } catch {
      map = null;
    }
    maps.set(file, map);
  }
  return map;
}

/**
 * A map's source as a path from the project root: esbuild writes them relative to the output
 * directory (`../../functions/x.ts`, `../../../../main/node_modules/pkg/x.js` from a worktree).
 */
export function projectPath(source: string): string {
  const modules = source.lastIndexOf('node_modules/');
  return modules >= 0 ? source.slice(modules) : source.replace(/^(?:\.\.?\/)+/, '');
}

/** One frame in V8's text, at its original position when its file has a map. */
export function mappedFrame(frame: NodeJS.CallSite): string {
  const text = String(frame);
  const file = frame.getFileName();
  const line = frame.getLineNumber();
  const column = frame.getColumnNumber();
  if (!file || line === null || column === null) return text;
  const map = mapOf(file);
  if (!map) return text;
  const entry = map.findEntry(line - 1, column - 1);
  if (!('originalSource' in entry)) return text;
  const original = `${projectPath(entry.originalSource)}:${entry.originalLine + 1}:${entry.originalColumn + 1}`;
  const generated = `${file}:${line}:${column}`;
  const at = text.lastIndexOf(generated);
  return at < 0 ? text : text.slice(0, at) + original + text.slice(at + generated.length);
}

function header(error: unknown): string {
  try {
    return Error.prototype.toString.call(error);
  } catch {
    return '<error>';
  }
}

/** `Error.prepareStackTrace`: V8's format (header, then one `    at …` line per frame), positions mapped. */
export function prepareMappedStack(error: unknown, frames: NodeJS.CallSite[]): string {
  return (
    header(error) +
    frames
      .map((f) => {
        try {
          return `\n    at ${mappedFrame(f)}`;
        } catch {
          return `\n    at ${String(f)}`;
        }
      })
      .join('')
  );
}

/**
 * Installs `prepareMappedStack` unless Node maps stacks itself. It replaces Node's default
 * `Error.prepareStackTrace` (Node 20.x and later define one, which formats as V8 does).
 */
export function installMappedStacks(): void {
  if (process.sourceMapsEnabled) return;
  Error.prepareStackTrace = prepareMappedStack;
}
