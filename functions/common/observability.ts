import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import type { MiddlewareObj } from '@middy/core';
import { METRIC } from '../contract';
import type { Log } from '../core/ports';
import { type HttpEvent, type HttpResult, LOG_KEYS } from './http';

export const NAMESPACE = 'Vicinity';

export interface Observability {
  logger: Logger;
  metrics: Metrics;
}

export function createObservability(serviceName: string): Observability {
  const logger = new Logger({ serviceName });
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

type Request = { event: HttpEvent; response?: HttpResult | null };

/**
 * The access log: one line per request with the space and version it served (from the Vicinity-Version
 * header the routes set), what the route added under LOG_KEYS (collection, k, cache), latency and
 * status; and the matching EMF metrics. The line's object is not even built when INFO is off.
 */
function accessLine(o: Observability) {
  const started = new WeakMap<object, number>();
  const start = (request: Request) => {
    started.set(request.event, performance.now());
  };
  const finish = (request: Request) => {
    const t0 = started.get(request.event) ?? performance.now();
    const ms = performance.now() - t0;
    const res = request.response;
    const status = res?.statusCode ?? 500;
    const keys = res?.[LOG_KEYS];
    if (keys) delete res[LOG_KEYS];
    if (o.logger.level <= INFO_LEVEL) {
      const version = res?.headers?.['vicinity-version'];
      const space = /^\/v1\/spaces\/([^/]+)/.exec(request.event.rawPath ?? '')?.[1];
      o.logger.info('request', {
        ...keys,
        method: request.event.requestContext?.http?.method,
        path: request.event.rawPath,
        status,
        space,
        version,
        ms: Number(ms.toFixed(3)),
        requestId: request.event.requestContext?.requestId,
      });
    }
    o.metrics.addMetric(METRIC.requestLatency, MetricUnit.Milliseconds, ms);
    if (status >= 500) o.metrics.addMetric(METRIC.serverErrors, MetricUnit.Count, 1);
    else if (status >= 400) o.metrics.addMetric(METRIC.clientErrors, MetricUnit.Count, 1);
  };
  return { start, finish };
}

/**
 * The per-request observability of an HTTP handler as one middleware: what Powertools'
 * `injectLambdaContext(logger, { resetKeys: true })` and `logMetrics(metrics)` do, then the access log,
 * through the same public Logger and Metrics calls in the same order — the Lambda context in every log
 * line, the access line and its metrics (accessLine), the EMF flush, buffer and temporary keys
 * cleared. Synchronous hooks (middy awaits only what returns a promise). Without
 * their per-request copies of `request.internal` (cleanup hooks for early-returning Powertools
 * middlewares, which these handlers do not use) and with one middleware hop instead of three.
 */
export function observe(o: Observability): MiddlewareObj<HttpEvent, HttpResult> {
  const { start, finish } = accessLine(o);
  const end = (request: Request) => {
    finish(request);
    o.metrics.publishStoredMetrics();
    o.logger.clearBuffer();
    o.logger.resetKeys();
  };
  return {
    before: (request) => {
      o.logger.refreshSampleRateCalculation();
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
