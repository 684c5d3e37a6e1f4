import type { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';
import { METRIC } from '../contract';
import type { Log } from '../core/ports';
import { type HttpEvent, type HttpResult, LOG_KEYS } from './http';
import { RequestLogger } from './request-logger';

export { RequestLogger };

export const NAMESPACE = 'Vicinity';

export interface Observability {
  logger: Logger;
  metrics: Metrics;
}

export function createObservability(serviceName: string): Observability {
  const logger = new RequestLogger({ serviceName });
  // Metrics' own warnings go through the logger, so its level governs them too.
  return { logger, metrics: new Metrics({ namespace: NAMESPACE, serviceName, logger }) };
}

export { injectLambdaContext, MetricUnit };

/**
 * For the event-driven functions (build, tasks, sweeper): Powertools' `logMetrics` without its
 * "No application metrics to publish" warning on an invocation that simply had none to report (a build
 * that only dispatched its tasks, a duplicate event) — a WARN a user would chase for nothing. Whatever
 * an invocation stored is flushed after it, or after its error; dimensions never carry over.
 */
export function flushMetrics(metrics: Metrics): MiddlewareObj {
  const flush = () => {
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    else {
      metrics.clearDimensions();
      metrics.clearMetadata();
    }
  };
  return { after: flush, onError: flush };
}

/** Powertools' numeric level of INFO: the access line is built only when the logger would write it. */
const INFO_LEVEL = 12;

/** When the request started, on middy's request object (one per invocation). */
const STARTED: unique symbol = Symbol('vicinity.started');
type Request = { event: HttpEvent; response?: HttpResult | null; [STARTED]?: number };

/**
 * The request's own metrics as the one EMF line Powertools' `publishStoredMetrics` writes for them (same
 * namespace, dimension sets and dimension values, metrics in the order added, `Timestamp` now), built
 * from a template Powertools serialises once (`serializeMetrics` with nothing stored) instead of
 * Powertools storing, validating and serialising each metric per request (~2.7 µs of CPU per request
 * with metrics disabled, ~6.8 µs enabled). When Powertools holds other metrics of the invocation (a
 * snapshot load's), the request's go through Powertools with them, in one line as before. The HTTP
 * handlers add no dimensions or metadata of their own. `before` is the request's access line when its
 * caller built it (RequestLogger.infoLine): written first, in the same write as the EMF line.
 */
function requestMetrics(metrics: Metrics) {
  let head: string | undefined;
  let tail = '';
  const template = () => {
    const { _aws, ...dimensions } = metrics.serializeMetrics() as unknown as {
      _aws: { CloudWatchMetrics: [{ Namespace: string; Dimensions: string[][] }] };
    } & Record<string, unknown>;
    const cw = _aws.CloudWatchMetrics[0];
    head = `"CloudWatchMetrics":[{"Namespace":${JSON.stringify(cw.Namespace)},"Dimensions":${JSON.stringify(cw.Dimensions)},"Metrics":[`;
    const dims = JSON.stringify(dimensions);
    tail = dims === '{}' ? '' : dims.slice(1, -1);
  };
  /** The line's metric definitions and values around the latency, per (cache metric, error metric). */
  const shapes = new Map<string, { defs: string; before: string; after: string }>();
  const shape = (cache: string | undefined, error: string | undefined) => {
    const key = `${cache}|${error}`;
    let s = shapes.get(key);
    if (!s) {
      const defs = [
        ...(cache ? [[cache, MetricUnit.Count]] : []),
        [METRIC.requestLatency, MetricUnit.Milliseconds],
        ...(error ? [[error, MetricUnit.Count]] : []),
      ].map(([n, u]) => `{"Name":"${n}","Unit":"${u}"}`);
      const before = [...(tail ? [tail] : []), ...(cache ? [`"${cache}":1`] : [])].join(',');
      s = {
        defs: defs.join(','),
        before: `${before}${before ? ',' : ''}"${METRIC.requestLatency}":`,
        after: error ? `,"${error}":1` : '',
      };
      shapes.set(key, s);
    }
    return s;
  };
  /**
   * Writes the line for the request's metrics — the cache metric if any, RequestLatency, the error
   * metric if any, in that order — or hands them to Powertools.
   */
  return (cache: string | undefined, ms: number, error: string | undefined, before: string) => {
    const stored = metrics.hasStoredMetrics();
    // `isDisabled` is protected in Powertools' types, public in its code: POWERTOOLS_METRICS_DISABLED or
    // POWERTOOLS_DEV as read when the Metrics object was built.
    if (stored || (metrics as unknown as { isDisabled(): boolean }).isDisabled()) {
      // The access line first, then whatever Powertools writes (or nothing, metrics being off).
      if (before) process.stdout.write(before);
      if (!stored) return;
      if (cache) metrics.addMetric(cache, MetricUnit.Count, 1);
      metrics.addMetric(METRIC.requestLatency, MetricUnit.Milliseconds, ms);
      if (error) metrics.addMetric(error, MetricUnit.Count, 1);
      metrics.publishStoredMetrics();
      return;
    }
    if (head === undefined) template();
    const s = shape(cache, error);
    process.stdout.write(
      `${before}{"_aws":{"Timestamp":${Date.now()},${head}${s.defs}]}]},${s.before}${ms}${s.after}}\n`,
    );
  };
}

/**
 * The access log: one line per request with the space and version it served (from the Vicinity-Version
 * header the routes set), what the route added under LOG_KEYS (collection, k, cache), latency and
 * status; and the matching EMF metrics: RequestLatency, ClientErrors or ServerErrors, and CacheHit or
 * CacheMiss when the route's keys say `cache: hit|miss` (the query function's searches and item
 * reads). The line's object is not even built when INFO is off.
 */
function accessLine(o: Observability) {
  const emit = requestMetrics(o.metrics);
  const start = (request: Request) => {
    request[STARTED] = performance.now();
  };
  const finish = (request: Request) => {
    const t0 = request[STARTED] ?? performance.now();
    const ms = performance.now() - t0;
    const res = request.response;
    const status = res?.statusCode ?? 500;
    const keys = res?.[LOG_KEYS];
    if (keys) delete res[LOG_KEYS];
    let line = '';
    if (o.logger.level <= INFO_LEVEL) {
      const version = res?.headers?.['vicinity-version'];
      const space = /^\/v1\/spaces\/([^/]+)/.exec(request.event.rawPath ?? '')?.[1];
      // The route's keys, then these (a key of both keeps its place and takes the value here): what
      // `{ ...keys, method, … }` builds, without V8's slow path for properties added after a spread (~5 µs).
      const entry: Record<string, unknown> = {};
      if (keys) for (const k in keys) entry[k] = keys[k];
      entry.method = request.event.requestContext?.http?.method;
      entry.path = request.event.rawPath;
      entry.status = status;
      entry.space = space;
      entry.version = version;
      entry.ms = Number(ms.toFixed(3));
      entry.requestId = request.event.requestContext?.requestId;
      const built = o.logger instanceof RequestLogger ? o.logger.infoLine('request', entry) : undefined;
      if (built === undefined) o.logger.info('request', entry);
      else line = built;
    }
    // In the order the metrics were added before: the cache metric during the request, then these.
    const cache = keys?.cache;
    emit(
      cache === 'hit' ? METRIC.cacheHit : cache === 'miss' ? METRIC.cacheMiss : undefined,
      ms,
      status >= 500 ? METRIC.serverErrors : status >= 400 ? METRIC.clientErrors : undefined,
      line,
    );
  };
  return { start, finish };
}

/** Whether Powertools' debug sampling is configured (POWERTOOLS_LOGGER_SAMPLE_RATE above 0), read once. */
function debugSampling(): boolean {
  const rate = Number(process.env.POWERTOOLS_LOGGER_SAMPLE_RATE ?? 0);
  return rate > 0;
}

/**
 * The per-request observability of an HTTP handler as one middleware: what Powertools'
 * `injectLambdaContext(logger, { resetKeys: true })` and `logMetrics(metrics)` do, then the access log,
 * through the same public Logger and Metrics calls in the same order — the Lambda context in every log
 * line, the access line and its metrics (accessLine), the EMF flush, buffer and temporary keys
 * cleared. Synchronous hooks (middy awaits only what returns a promise). Without
 * their per-request copies of `request.internal` (cleanup hooks for early-returning Powertools
 * middlewares, which these handlers do not use) and with one middleware hop instead of three. The
 * debug-sampling refresh runs only when a sample rate is configured: without one it only sets the
 * level the logger already has (nothing here changes it during a request).
 */
export function observe(o: Observability): MiddlewareObj<HttpEvent, HttpResult> {
  const { start, finish } = accessLine(o);
  const sampling = debugSampling();
  const end = (request: Request) => {
    finish(request);
    o.logger.clearBuffer();
    o.logger.resetKeys();
  };
  return {
    before: (request) => {
      if (sampling) o.logger.refreshSampleRateCalculation();
      o.logger.addContext(request.context);
      o.logger.logEventIfEnabled(request.event);
      start(request);
    },
    after: end,
    onError: end,
  };
}

/** The use cases' Log over a Powertools Logger. */
export function asLog(logger: Logger): Log {
  return {
    debug: (m, e) => (e ? logger.debug(m, e) : logger.debug(m)),
    info: (m, e) => (e ? logger.info(m, e) : logger.info(m)),
    warn: (m, e) => (e ? logger.warn(m, e) : logger.warn(m)),
    error: (m, e) => (e ? logger.error(m, e) : logger.error(m)),
  };
}
