/**
 * The query benches measure the handler as a default deploy runs it: INFO access lines and EMF metrics
 * on (Powertools' defaults; the deploy sets neither POWERTOOLS_LOG_LEVEL nor POWERTOOLS_METRICS_DISABLED).
 * Their lines are written — one write call each, as a Lambda's stdout takes them — to /dev/null, so
 * they cost what writing costs without flooding the terminal; the bench's own report goes to the real
 * stdout through `print`. Powertools reads the two settings when a Logger or Metrics is built: the
 * benches build their stacks after their imports.
 */
import { openSync, writeSync } from 'node:fs';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { NAMESPACE, type Observability, RequestLogger } from '../functions/common/observability';

process.env.POWERTOOLS_LOG_LEVEL = 'INFO';
process.env.POWERTOOLS_METRICS_DISABLED = 'false';
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';

const sink = openSync('/dev/null', 'w');
const stdoutWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
  if (typeof chunk === 'string') writeSync(sink, chunk);
  else writeSync(sink, chunk);
  const done = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
  done?.();
  return true;
}) as typeof process.stdout.write;

/** The bench's own output, on the real stdout. */
export const print = (s: string) => stdoutWrite(s);

/**
 * The handlers' observability with INFO logs and metrics off (what the benches measured before they
 * measured as deployed): a handler built with it shows what the access and EMF lines cost.
 */
export function quietObservability(): Observability {
  process.env.POWERTOOLS_METRICS_DISABLED = 'true';
  try {
    const logger = new RequestLogger({ serviceName: 'vicinity-query', logLevel: 'ERROR' });
    return { logger, metrics: new Metrics({ namespace: NAMESPACE, serviceName: 'vicinity-query', logger }) };
  } finally {
    process.env.POWERTOOLS_METRICS_DISABLED = 'false';
  }
}
