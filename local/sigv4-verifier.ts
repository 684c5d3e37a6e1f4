/**
 * SigV4 checking for the local admin routes, standing in for API Gateway's IAM authorizer
 * (`VICINITY_ADMIN_AUTH=iam`). There is no IAM here: a request passes when re-signing it with the
 * stack's one key pair gives the same signature, so a client proves it signs as it would for AWS.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { Sha256 } from '@aws-crypto/sha256-js';
import { SignatureV4 } from '@smithy/signature-v4';
import type { HttpRequest } from '@smithy/types';
import type { HttpEvent, HttpResult } from '../functions/common/http';
import { problemResponse } from '../functions/common/problem';
import { VicinityError } from '../functions/core/errors';

/** API Gateway refuses signatures whose x-amz-date is further than this from its clock. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

export interface VerifierOptions {
  credentials: { accessKeyId: string; secretAccessKey: string };
  region: string;
  /** For tests: the verifier's clock. */
  now?: () => Date;
}

const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/,\s]+)\/(\d{8})\/([^/,\s]+)\/([^/,\s]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;._-]+),\s*Signature=([0-9a-f]{64})$/;

/** `20250102T030405Z` → a Date, or undefined when malformed. */
function amzDate(text: string | undefined): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text ?? '');
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as number[];
  return new Date(Date.UTC(y as number, (mo as number) - 1, d, h, mi, s));
}

function bodyBytes(event: HttpEvent): Buffer {
  if (event.body === undefined) return Buffer.alloc(0);
  return Buffer.from(event.body, event.isBase64Encoded ? 'base64' : 'utf8');
}

function queryOf(raw: string): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of new URLSearchParams(raw)) {
    const had = query[k];
    query[k] = had === undefined ? v : [...(Array.isArray(had) ? had : [had]), v];
  }
  return query;
}

/** Why the request's signature is refused, or undefined when it is valid. */
export async function signatureProblem(event: HttpEvent, opts: VerifierOptions): Promise<string | undefined> {
  const headers = event.headers ?? {};
  const auth = AUTHORIZATION.exec(headers.authorization ?? '');
  if (!auth) return 'Missing or malformed SigV4 Authorization header: sign the request (service execute-api)';
  const [, keyId, scopeDate, region, service, signedList, signature] = auth as unknown as string[];
  if (keyId !== opts.credentials.accessKeyId) return 'Unknown access key';
  if (region !== opts.region || service !== 'execute-api')
    return `The credential scope must be ${opts.region}/execute-api, not ${region}/${service}`;
  const date = amzDate(headers['x-amz-date']);
  if (!date) return 'Missing or malformed x-amz-date header';
  const now = (opts.now ?? (() => new Date()))();
  if (Math.abs(now.getTime() - date.getTime()) > MAX_CLOCK_SKEW_MS)
    return 'Signature expired: x-amz-date is more than 5 minutes from the server time';
  if (headers['x-amz-date']?.slice(0, 8) !== scopeDate) return 'The credential scope date is not x-amz-date';
  const signed = (signedList as string).split(';');
  if (!signed.includes('host')) return 'The host header must be signed';

  const body = bodyBytes(event);
  // The signer trusts a given x-amz-content-sha256; the body must really have that hash.
  const claimed = headers['x-amz-content-sha256'];
  if (claimed !== undefined && claimed !== createHash('sha256').update(body).digest('hex'))
    return 'x-amz-content-sha256 does not match the body';

  const signedHeaders: Record<string, string> = {};
  for (const name of signed) {
    const value = headers[name];
    if (value === undefined) return `Signed header ${name} is missing`;
    signedHeaders[name] = value;
  }
  const request: HttpRequest = {
    method: event.requestContext.http.method,
    protocol: 'https:',
    hostname: signedHeaders.host ?? '',
    path: event.rawPath,
    query: queryOf(event.rawQueryString ?? ''),
    headers: signedHeaders,
    body,
  };
  // applyChecksum off: re-sign exactly the client's headers, adding none of our own.
  const signer = new SignatureV4({
    service: 'execute-api',
    region: opts.region,
    credentials: opts.credentials,
    sha256: Sha256,
    applyChecksum: false,
  });
  const expected = (await signer.sign(request, { signingDate: date, signableHeaders: new Set(signed) }))
    .headers.authorization;
  const ours = Buffer.from(/Signature=([0-9a-f]{64})$/.exec(expected ?? '')?.[1] ?? '', 'utf8');
  const theirs = Buffer.from(signature as string, 'utf8');
  if (ours.length !== theirs.length || !timingSafeEqual(ours, theirs))
    return 'The request signature does not match: check the credentials and region';
  return undefined;
}

/** The 403 problem+json answer for a refused signature. */
export function forbidden(detail: string, requestId?: string): HttpResult {
  return problemResponse(new VicinityError('forbidden', 'forbidden', 'Forbidden', detail), requestId);
}
