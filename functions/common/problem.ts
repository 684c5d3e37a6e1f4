import type { MiddlewareObj } from '@middy/core';
import { type ErrorKind, VicinityError } from '../core/errors';
import type { Log } from '../core/ports';
import type { HttpEvent, HttpResult } from './http';

/** The one table from an error's kind to its HTTP status; nothing else in the code base names a status for an error. */
export const STATUS_OF_KIND: Readonly<Record<ErrorKind, number>> = {
  'bad-request': 400,
  forbidden: 403,
  'not-found': 404,
  'method-not-allowed': 405,
  conflict: 409,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  unprocessable: 422,
  internal: 500,
  unavailable: 503,
};

/** The HTTP status an error answers with: by its kind, and 500 for anything that is not a VicinityError. */
export function httpStatus(err: unknown): number {
  return err instanceof VicinityError ? STATUS_OF_KIND[err.kind] : 500;
}

/** The problem+json object for an error (also used inside batch answers, one per failed entry). */
export function problemBody(err: VicinityError, instance?: string): Record<string, unknown> {
  // retryAfter and allow travel as headers, not body fields.
  const { retryAfter: _r, allow: _a, ...extras } = err.extras;
  return {
    type: `https://vicinity.dev/problems/${err.type}`,
    title: err.title,
    status: httpStatus(err),
    detail: err.message,
    ...(instance ? { instance } : {}),
    ...extras,
  };
}

export function problemResponse(err: VicinityError, instance?: string): HttpResult {
  const headers: Record<string, string> = { 'content-type': 'application/problem+json' };
  if (typeof err.extras.retryAfter === 'number') headers['retry-after'] = String(err.extras.retryAfter);
  if (typeof err.extras.allow === 'string') headers.allow = err.extras.allow;
  return { statusCode: httpStatus(err), headers, body: JSON.stringify(problemBody(err, instance)) };
}

/** Maps any error to problem+json: a VicinityError below 500 says what went wrong; anything else exposes nothing. */
export function toProblem(err: unknown, instance?: string): HttpResult {
  if (err instanceof VicinityError) return problemResponse(err, instance);
  return problemResponse(
    new VicinityError(
      'internal',
      'internal',
      'Internal error',
      'Something went wrong on our side; the request id identifies it in the logs',
    ),
    instance,
  );
}

/**
 * The one error middleware: every problem+json response of every HTTP handler comes from here.
 * `translate` turns an outside system's error into the domain's (the wiring passes the AWS adapter's:
 * throttling past the SDK's retries is a 503, not a 500).
 */
export function problemMiddleware(
  log: Log,
  translate: (err: unknown) => unknown = (err) => err,
): MiddlewareObj<HttpEvent, HttpResult> {
  return {
    onError: (request) => {
      const err = translate(request.error);
      const requestId = request.event?.requestContext?.requestId;
      const version = err instanceof VicinityError ? err.extras.version : undefined;
      const status = httpStatus(err);
      if (err instanceof VicinityError && status < 500) {
        log.info('request refused', { status, detail: err.message, requestId, version });
      } else {
        log.error('request failed', {
          requestId,
          version,
          error:
            err instanceof Error ? { name: err.name, message: err.message, stack: err.stack } : String(err),
          cause: err instanceof Error && err.cause ? String(err.cause) : undefined,
        });
      }
      request.response = toProblem(err, requestId);
    },
  };
}
