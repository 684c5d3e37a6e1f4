/**
 * Serves the explorer page (web/, built by `npm run build:web` into web/dist) on the local stack's
 * port, for every path outside /v1: `/` is the page, `/assets/…` its hashed files. The page talks
 * only to the public HTTP API on the same origin.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { dirname, extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const DEFAULT_WEB_DIST = resolve(dirname(fileURLToPath(import.meta.url)), '../web/dist');

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.map': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
};

const SECURITY_HEADERS = {
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  // The page loads only its own files and calls only this origin's API.
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
};

const NOT_BUILT = `<!doctype html><html lang="en"><meta charset="utf-8"><title>Vicinity explorer</title>
<body style="font-family:system-ui;max-width:40em;margin:3em auto"><h1>The explorer page is not built</h1>
<p>Run <code>npm run build:web</code> (or start with <code>npm start</code>, which builds it) and reload.
The API is at <a href="/v1/spaces">/v1/spaces</a>.</p></body></html>`;

export type StaticHandler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

/**
 * A handler for `startLocalStack({ staticHandler })`: answers GET/HEAD for files under `dir`
 * (true), or leaves the request to the API's 404 (false). Never serves anything outside `dir`.
 */
export function createStaticHandler(dir: string = DEFAULT_WEB_DIST): StaticHandler {
  const root = resolve(dir);
  return async (req, res) => {
    const method = req.method ?? 'GET';
    if (method !== 'GET' && method !== 'HEAD') return false;
    let path: string;
    try {
      path = decodeURIComponent(new URL(req.url ?? '/', 'http://local').pathname);
    } catch {
      return false;
    }
    if (path.includes('\0')) return false;
    const isPage = path === '/' || path === '/index.html';
    const file = normalize(join(root, isPage ? 'index.html' : path));
    if (file !== root && !file.startsWith(root + sep)) return false;
    const info = await stat(file).catch(() => undefined);
    if (!info?.isFile()) {
      if (!isPage) return false;
      res.writeHead(503, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
      res.end(method === 'HEAD' ? undefined : NOT_BUILT);
      return true;
    }
    const hashed = path.startsWith('/assets/');
    res.writeHead(200, {
      'content-type': TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream',
      'content-length': String(info.size),
      // Vite names assets by content hash; the page itself must be revalidated to pick up a new build.
      'cache-control': hashed ? 'public, max-age=31536000, immutable' : 'no-cache',
      'last-modified': info.mtime.toUTCString(),
      ...SECURITY_HEADERS,
    });
    if (method === 'HEAD') {
      res.end();
      return true;
    }
    await new Promise<void>((ok) => {
      const stream = createReadStream(file);
      stream.on('error', () => {
        res.destroy();
        ok();
      });
      stream.on('end', () => ok());
      stream.pipe(res);
    });
    return true;
  };
}
