import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { RequestLogger } from '../../functions/common/request-logger';
import { fakeContext } from '../../local/http-adapter';

/** What `logger.info(message, extras)` writes, Powertools' own way. */
function powertoolsLine(logger: RequestLogger, message: string, extras: Record<string, unknown>) {
  const out: string[] = [];
  const spy = vi.spyOn(process.stdout, 'write').mockImplementation((c: string | Uint8Array) => {
    out.push(String(c));
    return true;
  });
  try {
    logger.info(message, extras);
  } finally {
    spy.mockRestore();
  }
  return out.join('');
}

const EXTRAS: Record<string, unknown>[] = [
  {
    space: 'music',
    version: 'v000007',
    collection: 'tracks',
    k: 10,
    cache: 'hit',
    method: 'POST',
    path: '/v1/spaces/music/collections/tracks/query',
    status: 200,
    ms: 0.253,
    requestId: 'req-1',
  },
  // Undefined values are dropped; quotes, unicode and control characters are escaped, format specifiers
  // left alone (Powertools' Console prints one string argument as it is); -0, NaN, booleans.
  {
    space: undefined,
    note: 'a "quoted" \\ päth %s %% %2F\n\u2028',
    z: -0,
    n: Number.NaN,
    ok: false,
    status: 404,
  },
  {},
];

describe('the access line built without Powertools’ formatter', () => {
  const saved = { ...process.env };
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-12-01T10:11:12.345Z'));
    delete process.env.POWERTOOLS_DEV;
    delete process.env.POWERTOOLS_LOGGER_SAMPLE_RATE;
    delete process.env.AWS_LAMBDA_MAX_CONCURRENCY;
    delete process.env._X_AMZN_TRACE_ID;
    delete process.env.TZ;
    process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
    // As Lambda sets it for an on-demand environment (Powertools reports no cold start otherwise).
    process.env.AWS_LAMBDA_INITIALIZATION_TYPE = 'on-demand';
  });
  afterEach(() => {
    vi.useRealTimers();
    process.env = { ...saved };
  });

  it('is byte for byte the line Powertools prints: before any context, cold and warm, with a trace id and a tenant', () => {
    const logger = new RequestLogger({ serviceName: 'vicinity-query' });
    logger.resetKeys();
    const cases: string[] = [];
    const check = () => {
      for (const extras of EXTRAS) {
        const built = logger.infoLine('request', extras);
        expect(built).toBeDefined();
        expect(built).toBe(powertoolsLine(logger, 'request', extras));
        cases.push(built as string);
      }
    };
    check();
    logger.addContext(fakeContext('vicinity-query', 'r-1', 3000));
    check();
    logger.addContext(fakeContext('vicinity-query', 'r-2', 3000));
    process.env._X_AMZN_TRACE_ID =
      'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
    check();
    logger.addContext({ ...fakeContext('vicinity-query', 'r-3', 3000), tenantId: 'acme' } as never);
    check();
    // The cases really differ: cold start, warm, the trace id, the tenant.
    expect(cases.some((l) => l.includes('"cold_start":true'))).toBe(true);
    expect(cases.some((l) => l.includes('"cold_start":false'))).toBe(true);
    expect(cases.some((l) => l.includes('"xray_trace_id":"1-5759e988-bd862e3fe1be46a994272793"'))).toBe(true);
    expect(cases.some((l) => l.includes('"tenant_id":"acme"'))).toBe(true);
    expect(cases.every((l) => l.endsWith('}\n') && !l.slice(0, -1).includes('\n'))).toBe(true);
  });

  it('leaves the line to Powertools whenever its output could differ', () => {
    const logger = new RequestLogger({ serviceName: 'vicinity-query' });
    // A new logger may hold keys from before (unknown): the first reset runs, then it is plain.
    expect(logger.infoLine('request', {})).toBeUndefined();
    logger.resetKeys();
    expect(logger.infoLine('request', {})).toBeDefined();
    // Null and '' (Powertools drops them), an integer-like key (it would come first), keys Powertools
    // reserves or prints itself, values it would format (objects, bigints, errors).
    for (const extras of [
      { version: null },
      { path: '' },
      { '0': 'first' },
      { level: 'x' },
      { service: 'x' },
      { function_name: 'x' },
      { o: { a: 1 } },
      { b: 1n },
      { e: new Error('x') },
    ])
      expect(logger.infoLine('request', extras)).toBeUndefined();
    logger.appendKeys({ tenant: 'a' });
    expect(logger.infoLine('request', {})).toBeUndefined();
    logger.resetKeys();
    expect(logger.infoLine('request', {})).toBeDefined();
    logger.appendPersistentKeys({ team: 'recs' });
    expect(logger.infoLine('request', {})).toBeUndefined();
    const other = new RequestLogger({ serviceName: 'vicinity-query' });
    other.resetKeys();
    other.setPersistentLogAttributes({ team: 'recs' });
    expect(other.infoLine('request', {})).toBeUndefined();

    // Options, dev mode, concurrent invocations, another time zone, log sampling: never plain.
    const plainUnder = (env: Record<string, string>, options: Record<string, unknown> = {}) => {
      Object.assign(process.env, env);
      // Sampling logs its own DEBUG line at construction.
      const quiet = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
      const l = new RequestLogger({ serviceName: 'vicinity-query', ...options });
      quiet.mockRestore();
      for (const k of Object.keys(env)) delete process.env[k];
      l.resetKeys();
      return l.infoLine('request', {}) !== undefined;
    };
    expect(plainUnder({})).toBe(true);
    expect(plainUnder({ TZ: ':UTC' })).toBe(true);
    expect(plainUnder({ TZ: 'Europe/Stockholm' })).toBe(false);
    expect(plainUnder({ POWERTOOLS_DEV: 'true' })).toBe(false);
    expect(plainUnder({ AWS_LAMBDA_MAX_CONCURRENCY: '4' })).toBe(false);
    expect(plainUnder({ POWERTOOLS_LOGGER_SAMPLE_RATE: '0.5' })).toBe(false);
    expect(plainUnder({}, { persistentKeys: { team: 'recs' } })).toBe(false);
    expect(plainUnder({}, { logRecordOrder: ['message'] })).toBe(false);
  });
});
