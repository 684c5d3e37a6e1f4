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
const generated = new Map<string, string[] | null>();

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

/** The lines of a generated file, read on first use (only to find a renamed function's name in it). */
function linesOf(file: string): string[] | null {
  let lines = generated.get(file);
  if (lines === undefined) {
    try {
      lines = readFileSync(file.startsWith('file:') ? fileURLToPath(file) : file, 'utf8').split('\n');
    } catch {
      lines = null;
    }
    generated.set(file, lines);
  }
  return lines;
}

const DECLARED = /^(?:async\s*)?(?:function\s*\*?\s*|class\s+)([\w$]+)/;
const ASSIGNED = /([\w$]+)\s*=\s*$/;

/**
 * The source name of the function a frame runs in, when the bundle renamed it (minified without
 * `keepNames`): V8 gives where the function starts; the identifier it is declared as (`function ye(`,
 * `class ye`) or assigned to (`ye=async()=>`) is at a position whose mapping carries the original name
 * (the map's `names`). Undefined when the frame's name is not such an identifier (a method, an
 * anonymous function) or the map names nothing there.
 */
export function originalName(frame: NodeJS.CallSite, map: SourceMap, file: string): string | undefined {
  const fn = frame.getFunctionName();
  const line = frame.getEnclosingLineNumber();
  const column = frame.getEnclosingColumnNumber();
  if (!fn || line === null || column === null) return undefined;
  const text = linesOf(file)?.[line - 1];
  if (text === undefined) return undefined;
  const start = column - 1;
  let at = -1;
  const declared = DECLARED.exec(text.slice(start, start + 40));
  if (declared?.[1] === fn) at = start + declared[0].length - fn.length;
  else {
    const assigned = ASSIGNED.exec(text.slice(Math.max(0, start - 40), start));
    if (assigned?.[1] === fn) at = start - assigned[0].length;
  }
  if (at < 0) return undefined;
  const entry = map.findEntry(line - 1, at) as { generatedColumn?: number; name?: string };
  return entry.generatedColumn === at && entry.name ? entry.name : undefined;
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
  const position = `${file}:${line}:${column}`;
  const at = text.lastIndexOf(position);
  if (at < 0) return text;
  let head = text.slice(0, at);
  const fn = frame.getFunctionName();
  const name = fn ? originalName(frame, map, file) : undefined;
  if (fn && name && name !== fn) {
    // `Module.Qs (`, `async ye (`, `new ye (`: the name is the last word before the position.
    const word = head.lastIndexOf(fn);
    if (word >= 0) head = head.slice(0, word) + name + head.slice(word + fn.length);
  }
  return head + original + text.slice(at + position.length);
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
