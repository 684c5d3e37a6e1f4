import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../functions/common/config';
import { executionModeWithoutSignal } from '../../functions/common/execution';
import { type HttpEvent, json } from '../../functions/common/http';
import { NAMESPACE } from '../../functions/common/observability';
import { httpHandler } from '../../functions/common/wiring';
import { ENV } from '../../functions/contract';
import { fakeContext, httpEvent } from '../../local/http-adapter';

function event(path: string): HttpEvent {
  return httpEvent({ method: 'GET', path, requestId: 'r-1', apiId: 'test' });
}

describe('the HTTP handlers’ middy execution mode', () => {
  const saved = { ...process.env };
  beforeEach(() => {
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    process.env.POWERTOOLS_LOG_LEVEL = 'CRITICAL';
  });
  afterEach(() => {
    vi.restoreAllMocks();
    process.env = { ...saved };
  });

  const handlerFor = (route: (e: HttpEvent) => Promise<ReturnType<typeof json>>) => {
    const logger = new Logger({ serviceName: 'vicinity-test' });
    const metrics = new Metrics({ namespace: NAMESPACE, serviceName: 'vicinity-test', logger });
    return httpHandler({ logger, metrics }, loadConfig({ [ENV.bucket]: 'b', [ENV.table]: 't' }), route);
  };

  it('answers a 500 problem before Lambda’s deadline when the route does not finish in time', async () => {
    // The route never settles: only the early timeout can answer.
    const h = handlerFor(() => new Promise(() => {}));
    const res = await h(event('/v1/spaces/music'), fakeContext('fn', 'aws-1', 30));
    expect(res.statusCode).toBe(500);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(JSON.parse(res.body as string)).toMatchObject({ status: 500, instance: 'r-1' });
  });

  it('answers the route’s response when it finishes in time, and its error as a problem', async () => {
    const h = handlerFor(async (e) => {
      if (e.rawPath.endsWith('/boom')) throw new Error('boom');
      return json(200, { ok: true });
    });
    const ok = await h(event('/v1/spaces/music'), fakeContext('fn', 'aws-2'));
    expect(ok).toMatchObject({ statusCode: 200, body: '{"ok":true}' });
    const failed = await h(event('/v1/spaces/boom'), fakeContext('fn', 'aws-3'));
    expect(failed.statusCode).toBe(500);
  });

  it('runs middlewares in middy’s order, stops at an early response, and rethrows what no onError handles', async () => {
    const seen: string[] = [];
    const run = middy<string, string>({ executionMode: executionModeWithoutSignal })
      .use({ before: () => void seen.push('before 1'), after: () => void seen.push('after 1') })
      .use({
        before: async (r) => {
          seen.push('before 2');
          if (r.event === 'early') return 'answered early';
        },
        after: () => void seen.push('after 2'),
      })
      .handler(async (e: string) => {
        seen.push('handler');
        if (e === 'throw') throw new Error('unhandled');
        return `got ${e}`;
      });
    expect(await run('x', fakeContext('fn', 'a'))).toBe('got x');
    expect(seen).toEqual(['before 1', 'before 2', 'handler', 'after 2', 'after 1']);
    seen.length = 0;
    expect(await run('early', fakeContext('fn', 'b'))).toBe('answered early');
    expect(seen).toEqual(['before 1', 'before 2']);
    await expect(run('throw', fakeContext('fn', 'c'))).rejects.toThrow('unhandled');
  });

  it('goes on after a middleware that waits, in order, to a later early response; a hook that throws reaches onError', async () => {
    const seen: string[] = [];
    const run = middy<string, string>({ executionMode: executionModeWithoutSignal })
      .use({
        before: (r) => {
          seen.push('before 1');
          if (r.event === 'throw') throw new Error('hook failed');
        },
        onError: (r) => {
          seen.push(`onError 1: ${(r.error as Error).message}`);
          r.response = 'recovered';
        },
      })
      .use({
        before: async () => {
          await new Promise((resolve) => setImmediate(resolve));
          seen.push('before 2 (waited)');
        },
        after: async () => {
          await new Promise((resolve) => setImmediate(resolve));
          seen.push('after 2 (waited)');
        },
      })
      .use({
        before: (r) => {
          seen.push('before 3');
          return r.event === 'late' ? 'answered late' : undefined;
        },
        after: () => void seen.push('after 3'),
      })
      .handler(async (e: string) => {
        seen.push('handler');
        return `got ${e}`;
      });
    expect(await run('late', fakeContext('fn', 'd'))).toBe('answered late');
    expect(seen).toEqual(['before 1', 'before 2 (waited)', 'before 3']);
    seen.length = 0;
    expect(await run('x', fakeContext('fn', 'e'))).toBe('got x');
    expect(seen).toEqual([
      'before 1',
      'before 2 (waited)',
      'before 3',
      'handler',
      'after 3',
      'after 2 (waited)',
    ]);
    seen.length = 0;
    expect(await run('throw', fakeContext('fn', 'f'))).toBe('recovered');
    expect(seen).toEqual(['before 1', 'onError 1: hook failed']);
  });
});
