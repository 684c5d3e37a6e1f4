import { Logger } from '@aws-lambda-powertools/logger';
import { injectLambdaContext } from '@aws-lambda-powertools/logger/middleware';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { logMetrics } from '@aws-lambda-powertools/metrics/middleware';
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

export { injectLambdaContext, logMetrics, MetricUnit };

/** Powertools' numeric level of INFO: the access line is built only when the logger would write it. */
const INFO_LEVEL = 12;

/**
 * One line per request with the space and version it served (from the Vicinity-Version header the
 * routes set), what the route added under LOG_KEYS (collection, k, cache), latency and status; and the
 * matching EMF metrics. The line's object is not even built when INFO is off.
 */
export function accessLog(o: Observability): MiddlewareObj<HttpEvent, HttpResult> {
  const started = new WeakMap<object, number>();
  const finish = (request: { event: HttpEvent; response?: HttpResult | null }) => {
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
  return {
    before: async (request) => {
      started.set(request.event, performance.now());
    },
    after: async (request) => finish(request),
    onError: async (request) => finish(request),
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
