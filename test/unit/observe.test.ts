import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import middy from '@middy/core';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../functions/common/config';
import { type HttpEvent, type HttpResult, json, LOG_KEYS } from '../../functions/common/http';
import { flushMetrics, NAMESPACE, RequestLogger } from '../../functions/common/observability';
import { httpHandler } from '../../functions/common/wiring';
import { ENV, METRIC } from '../../functions/contract';
import { BadRequestError } from '../../functions/core/errors';
import { fakeContext, httpEvent } from '../../local/http-adapter';

/** What the handlers write (Powertools' log lines, EMF; WARN and ERROR go to stderr), parsed line by line. */
function captureStdout() {
  const lines: Record<string, unknown>[] = [];
  const write = (chunk: string | Uint8Array) => {
    for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(JSON.parse(line));
    return true;
  };
  const spies = [
    vi.spyOn(process.stdout, 'write').mockImplementation(write),
    vi.spyOn(process.stderr, 'write').mockImplementation(write),
  ];
  return {
    lines,
    restore: () => {
      for (const s of spies) s.mockRestore();
    },
  };
}

function event(path: string, requestId: string): HttpEvent {
  return httpEvent({ method: 'GET', path, requestId, apiId: 'test' });
}

describe('the HTTP handlers’ per-request observability', () => {
  const saved = { ...process.env };
  let out: ReturnType<typeof captureStdout>;
  beforeEach(() => {
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
    delete process.env.POWERTOOLS_DEV;
  });
  afterEach(() => {
    out?.restore();
    process.env = { ...saved };
  });

  function handler() {
    // The functions' logger (createObservability): it skips resets while no keys were appended.
    const logger = new RequestLogger({ serviceName: 'vicinity-test' });
    const metrics = new Metrics({ namespace: NAMESPACE, serviceName: 'vicinity-test', logger });
    const h = httpHandler(
      { logger, metrics },
      loadConfig({ [ENV.bucket]: 'b', [ENV.table]: 't' }),
      async (e) => {
        if (e.rawPath.endsWith('/bad')) throw new BadRequestError('k: must be between 1 and 1000');
        // A key a route appends for its own request must not reach the next request's lines.
        logger.appendKeys({ leaked: e.requestContext.requestId });
        logger.info('inside');
        const res = json(200, { ok: true }, { 'vicinity-version': 'v7' });
        res[LOG_KEYS] = { collection: 'songs', k: 10 };
        return res;
      },
    );
    return { h, logger };
  }

  /** The middy wiring around a route that answers `answer` (given the request's Metrics). */
  function answering(answer: (metrics: Metrics) => HttpResult) {
    const logger = new Logger({ serviceName: 'vicinity-test' });
    const metrics = new Metrics({ namespace: NAMESPACE, serviceName: 'vicinity-test', logger });
    const h = httpHandler(
      { logger, metrics },
      loadConfig({ [ENV.bucket]: 'b', [ENV.table]: 't' }),
      async () => answer(metrics),
    );
    return { h, logger };
  }

  it('logs one access line per request with the Lambda context, the route’s keys and the version served, and flushes its metrics as EMF', async () => {
    const { h } = handler();
    out = captureStdout();
    const res = await h(event('/v1/spaces/music/collections/songs/query', 'r-1'), fakeContext('fn', 'aws-1'));
    out.restore();
    expect(res.statusCode).toBe(200);
    expect(res[LOG_KEYS]).toBeUndefined();
    const access = out.lines.find((l) => l.message === 'request');
    expect(access).toMatchObject({
      level: 'INFO',
      service: 'vicinity-test',
      function_name: 'fn',
      function_request_id: 'aws-1',
      cold_start: expect.any(Boolean),
      collection: 'songs',
      k: 10,
      method: 'GET',
      path: '/v1/spaces/music/collections/songs/query',
      status: 200,
      space: 'music',
      version: 'v7',
      requestId: 'r-1',
      ms: expect.any(Number),
    });
    const emf = out.lines.filter((l) => '_aws' in l);
    expect(emf).toHaveLength(1);
    expect(emf[0]).toMatchObject({ [METRIC.requestLatency]: expect.any(Number), service: 'vicinity-test' });
  });

  it('clears keys a request appended before the next request logs', async () => {
    const { h } = handler();
    out = captureStdout();
    // Appending, not appending, appending again: every request after one that appended starts clean.
    await h(event('/v1/spaces/music/collections/songs/query', 'r-1'), fakeContext('fn', 'aws-1'));
    await h(event('/v1/spaces/music/bad', 'r-2'), fakeContext('fn', 'aws-2'));
    await h(event('/v1/spaces/music/collections/songs/query', 'r-3'), fakeContext('fn', 'aws-3'));
    await h(event('/v1/spaces/music/bad', 'r-4'), fakeContext('fn', 'aws-4'));
    out.restore();
    for (const id of ['aws-2', 'aws-4']) {
      const lines = out.lines.filter((l) => l.function_request_id === id);
      expect(lines.length).toBeGreaterThan(0);
      for (const line of lines) expect(line.leaked).toBeUndefined();
    }
    const third = out.lines.find((l) => l.function_request_id === 'aws-3' && l.message === 'inside');
    expect(third?.leaked).toBe('r-3');
  });

  it('a refused request: a 400 problem, its access line and a client-error metric in its own EMF flush', async () => {
    const { h } = handler();
    out = captureStdout();
    const res = await h(event('/v1/spaces/music/bad', 'r-3'), fakeContext('fn', 'aws-3'));
    out.restore();
    expect(res.statusCode).toBe(400);
    expect(res.headers['content-type']).toBe('application/problem+json');
    expect(out.lines.find((l) => l.message === 'request')).toMatchObject({
      status: 400,
      function_request_id: 'aws-3',
      requestId: 'r-3',
    });
    const emf = out.lines.filter((l) => '_aws' in l);
    expect(emf).toHaveLength(1);
    expect(emf[0]).toMatchObject({ [METRIC.clientErrors]: 1 });
  });
  it('writes a request’s metrics as the very EMF line Powertools writes for them', async () => {
    const { h, logger } = answering(() => {
      const res = json(200, { ok: true }, { 'vicinity-version': 'v7' });
      res[LOG_KEYS] = { collection: 'songs', k: 10, cache: 'hit' };
      return res;
    });
    out = captureStdout();
    await h(event('/v1/spaces/music/collections/songs/query', 'r-4'), fakeContext('fn', 'aws-4'));
    out.restore();
    const emf = out.lines.filter((l) => '_aws' in l);
    expect(emf).toHaveLength(1);
    const line = emf[0] as Record<string, unknown> & { _aws: { Timestamp: number } };
    // The same metrics through Powertools itself, the way the handlers flushed them before.
    const reference = new Metrics({ namespace: NAMESPACE, serviceName: 'vicinity-test', logger });
    reference.addMetric(METRIC.cacheHit, MetricUnit.Count, 1);
    reference.addMetric(
      METRIC.requestLatency,
      MetricUnit.Milliseconds,
      line[METRIC.requestLatency] as number,
    );
    const expected = reference.serializeMetrics();
    expected._aws.Timestamp = line._aws.Timestamp;
    expect(JSON.stringify(line)).toBe(JSON.stringify(expected));
    expect(Math.abs(line._aws.Timestamp - Date.now())).toBeLessThan(60_000);
  });

  it('flushes metrics stored during the request (a snapshot load’s) with the request’s own, in one line', async () => {
    const { h } = answering((metrics) => {
      metrics.addMetric(METRIC.snapshotLoads, MetricUnit.Count, 1);
      const res = json(200, { ok: true }, { 'vicinity-version': 'v7' });
      res[LOG_KEYS] = { cache: 'miss' };
      return res;
    });
    out = captureStdout();
    await h(event('/v1/spaces/music/collections/songs/query', 'r-5'), fakeContext('fn', 'aws-5'));
    await h(event('/v1/spaces/music/collections/songs/query', 'r-6'), fakeContext('fn', 'aws-6'));
    out.restore();
    const emf = out.lines.filter((l) => '_aws' in l);
    expect(emf).toHaveLength(2);
    expect(emf[0]).toMatchObject({
      [METRIC.snapshotLoads]: 1,
      [METRIC.cacheMiss]: 1,
      service: 'vicinity-test',
    });
    expect(emf[0]?.[METRIC.requestLatency]).toEqual(expect.any(Number));
    // Nothing carried over into the next request's line.
    expect(emf[1]).toMatchObject({ [METRIC.snapshotLoads]: 1, [METRIC.cacheMiss]: 1 });
    expect(Object.keys(emf[1] as object).filter((k) => k === METRIC.snapshotLoads)).toHaveLength(1);
    expect(
      (emf[1] as { _aws: { CloudWatchMetrics: { Metrics: unknown[] }[] } })._aws.CloudWatchMetrics[0]
        ?.Metrics,
    ).toHaveLength(3);
  });

  it('writes no EMF line when metrics are disabled', async () => {
    process.env.POWERTOOLS_METRICS_DISABLED = 'true';
    const { h } = handler();
    out = captureStdout();
    const res = await h(event('/v1/spaces/music/collections/songs/query', 'r-7'), fakeContext('fn', 'aws-7'));
    out.restore();
    expect(res.statusCode).toBe(200);
    expect(out.lines.find((l) => l.message === 'request')).toMatchObject({ status: 200, requestId: 'r-7' });
    expect(out.lines.filter((l) => '_aws' in l)).toEqual([]);
  });
});

describe('the event-driven functions’ metrics flush', () => {
  const saved = { ...process.env };
  let out: ReturnType<typeof captureStdout>;
  beforeEach(() => {
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
    process.env.POWERTOOLS_LOG_LEVEL = 'WARN';
    delete process.env.POWERTOOLS_DEV;
  });
  afterEach(() => {
    out?.restore();
    process.env = { ...saved };
  });

  it('writes EMF for an invocation that stored metrics, and no warning for one that had none', async () => {
    const logger = new Logger({ serviceName: 'vicinity-test' });
    const metrics = new Metrics({ namespace: NAMESPACE, serviceName: 'vicinity-test', logger });
    const run = middy(async (n: number) => {
      metrics.addDimension('space', `s${n}`);
      if (n > 0) metrics.addMetric('Things', MetricUnit.Count, n);
      return n;
    }).use(flushMetrics(metrics));
    out = captureStdout();
    await run(0, fakeContext('build', 'none'));
    await run(2, fakeContext('build', 'some'));
    out.restore();
    // No "No application metrics to publish" WARN (Powertools' logMetrics writes one for the first).
    expect(out.lines.filter((l) => l.level === 'WARN')).toEqual([]);
    const emf = out.lines.filter((l) => '_aws' in l);
    expect(emf).toHaveLength(1);
    expect(emf[0]).toMatchObject({ Things: 2, space: 's2' });
  });
});
