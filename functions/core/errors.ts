/**
 * The one error hierarchy. Every error a caller can cause is a VicinityError of a *kind*; the core
 * knows no HTTP — `common/problem.ts` holds the one table from kind to status and answers problem+json.
 */
export interface ProblemExtras {
  [key: string]: unknown;
}

/** What went wrong, in the domain's words; each edge (HTTP, CLI) decides how to say it. */
export type ErrorKind =
  | 'bad-request'
  | 'forbidden'
  | 'not-found'
  | 'method-not-allowed'
  | 'conflict'
  | 'payload-too-large'
  | 'unsupported-media-type'
  | 'unprocessable'
  | 'unavailable'
  | 'internal';

export interface ErrorOptions {
  cause?: unknown;
  extras?: ProblemExtras;
}

/**
 * Every error class states its `name` as a string (`static readonly errorName`): the bundles are
 * minified without `keepNames`, which renames classes, so `new.target.name` would be `a` there. A
 * subclass that does not state its own gets its class's name where names survive (tests, tsx) and
 * would be renamed in a bundle; test/infra/error-names.test.ts checks every class in a bundle.
 */
export class VicinityError extends Error {
  static readonly errorName: string = 'VicinityError';
  readonly kind: ErrorKind;
  /** The problem type's slug (`https://vicinity.dev/problems/{type}`); usually the kind itself. */
  readonly type: string;
  readonly title: string;
  readonly extras: ProblemExtras;

  constructor(kind: ErrorKind, type: string, title: string, detail: string, options: ErrorOptions = {}) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = Object.hasOwn(new.target, 'errorName') ? new.target.errorName : new.target.name;
    this.kind = kind;
    this.type = type;
    this.title = title;
    this.extras = options.extras ?? {};
  }
}

export class BadRequestError extends VicinityError {
  static override readonly errorName: string = 'BadRequestError';
  constructor(detail: string, options: ErrorOptions = {}) {
    super('bad-request', 'bad-request', 'Bad request', detail, options);
  }
}

export class NotFoundError extends VicinityError {
  static override readonly errorName: string = 'NotFoundError';
  constructor(detail: string, options: ErrorOptions = {}) {
    super('not-found', 'not-found', 'Not found', detail, options);
  }
}

/** A lost compare-and-swap: the body carries the current pointer so the caller can retry knowingly. */
export class ConflictError extends VicinityError {
  static override readonly errorName: string = 'ConflictError';
  constructor(detail: string, options: ErrorOptions = {}) {
    super('conflict', 'conflict', 'Conflict', detail, options);
  }
}

export class PayloadTooLargeError extends VicinityError {
  static override readonly errorName: string = 'PayloadTooLargeError';
  constructor(detail: string, options: ErrorOptions = {}) {
    super('payload-too-large', 'payload-too-large', 'Payload too large', detail, options);
  }
}

/** A request body in a media type the route does not take (every body is application/json). */
export class UnsupportedMediaTypeError extends VicinityError {
  static override readonly errorName: string = 'UnsupportedMediaTypeError';
  constructor(detail: string, options: ErrorOptions = {}) {
    super('unsupported-media-type', 'unsupported-media-type', 'Unsupported media type', detail, options);
  }
}

export class UnprocessableError extends VicinityError {
  static override readonly errorName: string = 'UnprocessableError';
  constructor(detail: string, options: ErrorOptions = {}) {
    super('unprocessable', 'unprocessable', 'Unprocessable request', detail, options);
  }
}

/** The needed snapshot failed verification or loading; the caller may retry in `retryAfter` seconds. */
export class SnapshotUnavailableError extends VicinityError {
  static override readonly errorName: string = 'SnapshotUnavailableError';
  constructor(detail: string, options: ErrorOptions = {}) {
    super('unavailable', 'snapshot-unavailable', 'Snapshot unavailable', detail, {
      ...options,
      extras: { retryAfter: 5, ...options.extras },
    });
  }
}

/**
 * S3 or DynamoDB still throttled or failing after the SDK's own retries: nothing is wrong with the
 * request, so the client is told to come back (503 with `retryAfter`), not that the service broke (500).
 */
export class StorageUnavailableError extends VicinityError {
  static override readonly errorName: string = 'StorageUnavailableError';
  constructor(detail: string, options: ErrorOptions = {}) {
    super('unavailable', 'storage-unavailable', 'Storage unavailable', detail, {
      ...options,
      extras: { retryAfter: 1, ...options.extras },
    });
  }
}

/** One problem found in a release, pointing at the file and line (or row) a person must fix. */
export interface ReleaseProblem {
  file: string;
  line?: number;
  message: string;
}

/** A release that cannot be built; the version becomes FAILED with this as its reason. */
export class ReleaseInvalidError extends VicinityError {
  static override readonly errorName: string = 'ReleaseInvalidError';
  readonly problems: ReleaseProblem[];
  readonly problemCount: number;

  constructor(problems: ReleaseProblem[], problemCount = problems.length, options: { cause?: unknown } = {}) {
    super(
      'unprocessable',
      'release-invalid',
      'Release invalid',
      summariseProblems(problems, problemCount),
      options,
    );
    this.problems = problems;
    this.problemCount = problemCount;
  }
}

export function formatProblem(p: ReleaseProblem): string {
  return p.line === undefined ? `${p.file}: ${p.message}` : `${p.file}:${p.line}: ${p.message}`;
}

export function summariseProblems(problems: ReleaseProblem[], count: number): string {
  const head = problems.map(formatProblem).join('; ');
  return count > problems.length ? `${head} (and ${count - problems.length} more problems)` : head;
}

/** The pointer changed between read and write; retried internally, surfaced as ConflictError to callers. */
export class PointerConflictError extends ConflictError {
  static override readonly errorName: string = 'PointerConflictError';
}
