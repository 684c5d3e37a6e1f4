import {
  getXRayTraceIdFromEnv,
  isDevMode,
  shouldUseInvokeStore,
} from '@aws-lambda-powertools/commons/utils/env';
import { Logger } from '@aws-lambda-powertools/logger';
import type { Context } from 'aws-lambda';

type LoggerOptions = NonNullable<ConstructorParameters<typeof Logger>[0]>;
/** The options under which `infoLine` prints exactly what Powertools prints (nothing that reorders or adds fields). */
const PLAIN_OPTIONS = new Set(['serviceName', 'logLevel']);
/** The fields Powertools' formatter prints before the extra keys, in its order (PowertoolsLogFormatter). */
const BASE_FIELDS = new Set([
  'level',
  'message',
  'timestamp',
  'service',
  'cold_start',
  'function_arn',
  'function_memory_size',
  'function_name',
  'function_request_id',
  'sampling_rate',
  'xray_trace_id',
  'tenant_id',
]);

/** A value Powertools' LogItem prints, or undefined (dropped by both); it also drops null and ''. */
const presentOrAbsent = (v: unknown) => v !== null && v !== '';

/** The Lambda context fields Powertools keeps from `addContext` (LogAttributesStore's lambdaContext). */
interface LineContext {
  coldStart: boolean;
  invokedFunctionArn?: string;
  memoryLimitInMB?: string;
  functionName?: string;
  awsRequestId?: string;
  tenantId?: string;
}

/**
 * Powertools' Logger that also builds its per-request INFO line itself (`infoLine`), and knows whether
 * temporary keys were appended since its last `resetKeys`.
 *
 * - The per-request reset (observe) is skipped while there is nothing to reset: Powertools reads
 *   `process.env` three times for it (~0.5 µs), and the HTTP routes append no keys (LOG_KEYS instead).
 *   `appendKeys` is the only way to add temporary keys. Under Lambda's concurrent invocations each
 *   invocation's keys live in its own store, which ends with it.
 * - `info` costs ~14 µs per line (attribute stores, a deep merge, a copy without empty keys, a
 *   `JSON.stringify` through a replacer function, a Console write); the access line is the same
 *   JSON built directly (~3 µs), written by its caller together with the request's EMF line.
 */
export class RequestLogger extends Logger {
  /** Unknown at first: the first reset runs. */
  private temporaryKeys = true;
  /** Whether `infoLine` may build the line: plain options, no persistent keys, no dev mode, UTC timestamps. */
  private plain: boolean;
  private context: LineContext | undefined;
  private lastColdStart = false;

  constructor(options: LoggerOptions = {}) {
    super(options);
    // Read once: Lambda sets these for the environment's life (Powertools reads TZ per line, and keeps
    // the console it chose by POWERTOOLS_DEV at construction). Under concurrent invocations
    // (AWS_LAMBDA_MAX_CONCURRENCY) Powertools keeps the Lambda context per invocation: never plain.
    const tz = process.env.TZ ?? '';
    this.plain =
      Object.keys(options).every((k) => PLAIN_OPTIONS.has(k)) &&
      !isDevMode() &&
      !shouldUseInvokeStore() &&
      (tz === '' || tz.includes('UTC'));
  }

  override appendKeys(attributes: Parameters<Logger['appendKeys']>[0]): void {
    this.temporaryKeys = true;
    super.appendKeys(attributes);
  }

  override appendPersistentKeys(attributes: Parameters<Logger['appendPersistentKeys']>[0]): void {
    this.plain = false;
    super.appendPersistentKeys(attributes);
  }

  /** Deprecated in Powertools, and it skips `appendPersistentKeys`. */
  override setPersistentLogAttributes(attributes: Parameters<Logger['setPersistentLogAttributes']>[0]): void {
    this.plain = false;
    super.setPersistentLogAttributes(attributes);
  }

  override resetKeys(): void {
    if (!this.temporaryKeys) return;
    this.temporaryKeys = false;
    super.resetKeys();
  }

  override getColdStart(): boolean {
    this.lastColdStart = super.getColdStart();
    return this.lastColdStart;
  }

  override addContext(context: Context): void {
    super.addContext(context);
    const c = context as Context & { tenantId?: string };
    this.context = {
      coldStart: this.lastColdStart,
      invokedFunctionArn: c.invokedFunctionArn,
      memoryLimitInMB: c.memoryLimitInMB,
      functionName: c.functionName,
      awsRequestId: c.awsRequestId,
      tenantId: c.tenantId,
    };
  }

  /**
   * The line (with its newline) `info(message, extras)` would print at this moment, for the caller to
   * write; undefined where it could differ — temporary or persistent keys, options beyond the service
   * name and level, dev mode, another time zone, log sampling, an extra key Powertools reserves, prints
   * itself or orders first (integer-like), a null or empty value, a value that is not a string, number
   * or boolean — and the caller calls `info`.
   * The caller checks the level.
   */
  infoLine(message: string, extras: Record<string, unknown>): string | undefined {
    const data = (
      this as unknown as { powertoolsLogData: { serviceName?: string; sampleRateValue?: number } }
    ).powertoolsLogData;
    if (!this.plain || this.temporaryKeys || data.sampleRateValue) return undefined;
    const c = this.context;
    const trace = getXRayTraceIdFromEnv();
    // PowertoolsLogFormatter's fields in its order, then the extras. LogItem drops undefined, null and
    // '': JSON.stringify drops undefined, and a null or '' sends the line to Powertools.
    const head = {
      level: 'INFO',
      message,
      timestamp: new Date().toISOString(),
      service: data.serviceName,
      cold_start: c?.coldStart,
      function_arn: c?.invokedFunctionArn,
      function_memory_size: c?.memoryLimitInMB,
      function_name: c?.functionName,
      function_request_id: c?.awsRequestId,
      sampling_rate: data.sampleRateValue,
      xray_trace_id: trace,
      tenant_id: c?.tenantId,
    };
    for (const k in head) if (!presentOrAbsent(head[k as keyof typeof head])) return undefined;
    for (const k in extras) {
      const v = extras[k];
      const t = typeof v;
      // An integer-like key would come first in Powertools' merged object, before "level".
      const code = k.charCodeAt(0);
      if (BASE_FIELDS.has(k) || (code >= 48 && code <= 57)) return undefined;
      if (!(t === 'string' || t === 'number' || t === 'boolean' || v === undefined) || v === '')
        return undefined;
    }
    const h = JSON.stringify(head);
    const e = JSON.stringify(extras);
    return `${h.slice(0, -1)}${e === '{}' ? '}' : `,${e.slice(1)}`}\n`;
  }
}
