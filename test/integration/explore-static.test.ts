import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createStaticHandler } from '../../local/static';

/** Raw GET (fetch would normalise `..` away before sending). */
function raw(
  port: number,
  path: string,
  method = 'GET',
): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => {
        body += c;
      });
      res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', fail);
    req.end();
  });
}

describe('the explorer page server (local/static.ts)', () => {
  let dir: string;
  let server: Server;
  let missing: Server;
  let port: number;
  let missingPort: number;

  const serve = async (root: string) => {
    const handler = createStaticHandler(root);
    const s = createServer((req, res) => {
      void handler(req, res).then((served) => {
        if (!served) {
          res.writeHead(404, { 'content-type': 'text/plain' });
          res.end('api');
        }
      });
    });
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', () => r()));
    return { s, port: (s.address() as AddressInfo).port };
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'vicinity-static-'));
    await mkdir(join(dir, 'dist/assets'), { recursive: true });
    await writeFile(join(dir, 'dist/index.html'), '<!doctype html><title>page</title>');
    await writeFile(join(dir, 'dist/assets/index-abc123.js'), 'console.log(1)');
    await writeFile(join(dir, 'secret.txt'), 'outside');
    ({ s: server, port } = await serve(join(dir, 'dist')));
    ({ s: missing, port: missingPort } = await serve(join(dir, 'nothing-built')));
  });
  afterAll(async () => {
    server?.close();
    missing?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the page at / (revalidated) and hashed assets (immutable), with a strict CSP', async () => {
    const page = await raw(port, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['cache-control']).toBe('no-cache');
    expect(page.headers['content-security-policy']).toContain("default-src 'self'");
    expect(page.body).toContain('<title>page</title>');
    expect((await raw(port, '/?x=1')).status).toBe(200);
    expect((await raw(port, '/index.html')).status).toBe(200);
    const js = await raw(port, '/assets/index-abc123.js');
    expect(js.status).toBe(200);
    expect(js.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(js.headers['cache-control']).toContain('immutable');
    const head = await raw(port, '/assets/index-abc123.js', 'HEAD');
    expect(head.status).toBe(200);
    expect(head.body).toBe('');
  });

  it('leaves everything else to the API: unknown paths, other methods, and anything outside its folder', async () => {
    for (const path of [
      '/nope',
      '/assets/',
      '/../secret.txt',
      '/%2e%2e/secret.txt',
      '/assets/..%2f..%2fsecret.txt',
      '/%00',
    ]) {
      const r = await raw(port, path);
      expect(r.body, path).toBe('api');
    }
    expect((await raw(port, '/', 'POST')).body).toBe('api');
  });

  it('answers / with a hint when the page is not built, and still leaves other paths alone', async () => {
    const r = await raw(missingPort, '/');
    expect(r.status).toBe(503);
    expect(r.body).toContain('npm run build:web');
    expect((await raw(missingPort, '/assets/x.js')).body).toBe('api');
  });
});
