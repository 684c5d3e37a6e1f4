/**
 * Public reads (a deploy with `readAuth=none`): API Gateway lets anyone in, so the query function itself
 * keeps personal data and cost amplifiers behind authentication. A request is anonymous when public reads
 * are on and the gateway attached no IAM or JWT authorizer context. For anonymous callers:
 * `include=vector` and `consistency=strong` are refused (403), diff and projection samples are capped,
 * metadata fields not listed as public are refused as parameters and stripped from every answer.
 * With `readAuth=iam` or `jwt` (the default) this middleware does nothing.
 */
import type { MiddlewareObj } from '@middy/core';
import { VicinityError } from '../core/errors';
import type { HttpEvent, HttpResult } from './http';

export interface PublicReadsOptions {
  /** VICINITY_PUBLIC_READS: the deployer chose readAuth=none. */
  readonly enabled: boolean;
  /** VICINITY_PUBLIC_METADATA_FIELDS: the metadata fields anonymous callers may see. */
  readonly publicFields: readonly string[];
}

/** Sample caps for anonymous callers (authenticated callers keep the contract's limits: 5,000 / 20,000). */
export const ANONYMOUS_LIMITS = Object.freeze({ diffSample: 200, projectionSample: 1000 });

const AUTHENTICATE = 'call the API signed with SigV4 (or with a JWT); this deployment serves anonymous reads';

export class ForbiddenError extends VicinityError {
  static override readonly errorName: string = 'ForbiddenError';
  constructor(detail: string) {
    super('forbidden', 'forbidden', 'Forbidden', `${detail}: ${AUTHENTICATE}`);
  }
}

type Authorizer = { iam?: unknown; jwt?: unknown } | undefined;

export function isAnonymous(event: HttpEvent, o: PublicReadsOptions): boolean {
  if (!o.enabled) return false;
  const auth = (event.requestContext as { authorizer?: Authorizer } | undefined)?.authorizer;
  return !auth?.iam && !auth?.jwt;
}

function list(v: string | undefined): string[] {
  return (v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

/** Refuses what an anonymous caller may not ask for; throws the 403. */
export function checkAnonymousRequest(event: HttpEvent, o: PublicReadsOptions): void {
  const q = event.queryStringParameters ?? {};
  const path = event.rawPath ?? '';
  const allowed = new Set(o.publicFields);
  if (list(q.include).includes('vector')) throw new ForbiddenError('include=vector returns personal data');
  if (q.consistency === 'strong')
    throw new ForbiddenError('consistency=strong reads DynamoDB on every request');
  const sample = Number(q.sample);
  if (path.endsWith('/diff') && sample > ANONYMOUS_LIMITS.diffSample)
    throw new ForbiddenError(`sample above ${ANONYMOUS_LIMITS.diffSample} on diff`);
  if (path.endsWith('/projection') && sample > ANONYMOUS_LIMITS.projectionSample)
    throw new ForbiddenError(`sample above ${ANONYMOUS_LIMITS.projectionSample} on projection`);
  const fields = [...list(q.fields), ...(q.field && q.field !== 'id' ? [q.field] : [])];
  const hidden = fields.filter((f) => !allowed.has(f));
  if (hidden.length)
    throw new ForbiddenError(`metadata field ${hidden.map((f) => `"${f}"`).join(', ')} is not public`);
}

/** Keeps only public metadata fields anywhere in an answer (items, results, points, batch entries). */
export function stripPrivateMetadata(value: unknown, allowed: ReadonlySet<string>): unknown {
  if (Array.isArray(value)) return value.map((v) => stripPrivateMetadata(v, allowed));
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === 'metadata' && v !== null && typeof v === 'object' && !Array.isArray(v)) {
      out[k] = Object.fromEntries(Object.entries(v).filter(([f]) => allowed.has(f)));
    } else if ((k === 'metadataFields' || k === 'fields') && Array.isArray(v)) {
      out[k] = v.filter((f) => typeof f !== 'string' || allowed.has(f));
    } else {
      out[k] = stripPrivateMetadata(v, allowed);
    }
  }
  return out;
}

export function publicReadsMiddleware(o: PublicReadsOptions): MiddlewareObj<HttpEvent, HttpResult> {
  const allowed = new Set(o.publicFields);
  const anonymous = new WeakSet<object>();
  return {
    before: async (request) => {
      if (!isAnonymous(request.event, o)) return;
      anonymous.add(request.event);
      checkAnonymousRequest(request.event, o);
    },
    after: async (request) => {
      const r = request.response;
      if (!anonymous.has(request.event) || !r || typeof r.body !== 'string') return;
      if (!String(r.headers['content-type'] ?? '').startsWith('application/json')) return;
      r.body = JSON.stringify(stripPrivateMetadata(JSON.parse(r.body), allowed));
    },
  };
}
