/**
 * The local server's own HTTP errors — a request Node's parser refuses before any handler sees it (raw
 * non-ASCII bytes in the URL, a method it does not know, headers or a URL over MAX_HEADER_BYTES) — are
 * answered as problem+json like every other error, written on the socket directly (the `clientError`
 * event has no response object), instead of Node's bare 400/431 or a reset.
 */
import type { Server } from 'node:http';
import type { Duplex } from 'node:stream';

/** Headers plus request line, as Node's default and API Gateway's 10 KB-per-header rule allow. */
export const MAX_HEADER_BYTES = 16 * 1024;

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
};

/** The status, problem type and detail for a parser error code. */
export function describeClientError(code: string | undefined): {
  status: number;
  type: string;
  detail: string;
} {
  switch (code) {
    case 'HPE_HEADER_OVERFLOW':
      return {
        status: 431,
        type: 'headers-too-large',
        detail: `The request line and headers are over ${MAX_HEADER_BYTES} bytes (a URL that long is refused too)`,
      };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, type: 'request-timeout', detail: 'The request did not arrive in time' };
    case 'HPE_INVALID_METHOD':
      return {
        status: 400,
        type: 'bad-request',
        detail: 'The request method is not an HTTP method this server knows',
      };
    case 'HPE_INVALID_URL':
      return {
        status: 400,
        type: 'bad-request',
        detail: 'The request URL is malformed (raw non-ASCII bytes or spaces must be percent-encoded)',
      };
    default:
      return {
        status: 400,
        type: 'bad-request',
        detail: `The request is not well-formed HTTP/1.1${code?.startsWith('HPE_') ? ` (${code})` : ''}`,
      };
  }
}

/** Answers the server's client errors with problem+json and closes the connection gently. */
export function answerClientErrors(server: Server): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    if (err.code === 'ECONNRESET' || !socket.writable) {
      socket.destroy();
      return;
    }
    const { status, type, detail } = describeClientError(err.code);
    const body = JSON.stringify({
      type: `https://vicinity.dev/problems/${type}`,
      title: REASONS[status] ?? 'Bad Request',
      status,
      detail,
    });
    socket.end(
      `HTTP/1.1 ${status} ${REASONS[status] ?? 'Bad Request'}\r\n` +
        'Content-Type: application/problem+json\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n` +
        'Connection: close\r\n\r\n' +
        body,
    );
    // Read (and drop) what the client is still sending, so closing does not reset the connection
    // before it has read the answer; then let go.
    socket.on('data', () => undefined);
    socket.on('error', () => undefined);
    setTimeout(() => socket.destroy(), 2000).unref();
  });
}
