/**
 * The one error hierarchy. Every error a caller can cause is a VicinityError with an HTTP status;
 * `common/http.ts` is the only place that turns one into a problem+json response.
 */
export interface ProblemExtras {
  [key: string]: unknown;
}

export class VicinityError extends Error {
  readonly status: number;
  readonly type: string;
  readonly title: string;
  readonly extras: ProblemExtras;

  constructor(
    status: number,
    type: string,
    title: string,
    detail: string,
    options: { cause?: unknown; extras?: ProblemExtras } = {},
  ) {
    super(detail, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.status = status;
    this.type = type;
    this.title = title;
    this.extras = options.extras ?? {};
  }
}

export class BadRequestError extends VicinityError {
  constructor(detail: string, options: { cause?: unknown; extras?: ProblemExtras } = {}) {
    super(400, 'bad-request', 'Bad request', detail, options);
  }
}

export class NotFoundError extends VicinityError {
  constructor(detail: string, options: { cause?: unknown; extras?: ProblemExtras } = {}) {
    super(404, 'not-found', 'Not found', detail, options);
  }
}

/** A lost compare-and-swap: the body carries the current pointer so the caller can retry knowingly. */
export class ConflictError extends VicinityError {
  constructor(detail: string, options: { cause?: unknown; extras?: ProblemExtras } = {}) {
    super(409, 'conflict', 'Conflict', detail, options);
  }
}

export class PayloadTooLargeError extends VicinityError {
  constructor(detail: string, options: { cause?: unknown; extras?: ProblemExtras } = {}) {
    super(413, 'payload-too-large', 'Payload too large', detail, options);
  }
}

export class UnprocessableError extends VicinityError {
  constructor(detail: string, options: { cause?: unknown; extras?: ProblemExtras } = {}) {
    super(422, 'unprocessable', 'Unprocessable request', detail, options);
  }
}

/** The needed snapshot failed verification or loading; the caller may retry later. */
export class SnapshotUnavailableError extends VicinityError {
  constructor(detail: string, options: { cause?: unknown; extras?: ProblemExtras } = {}) {
    super(503, 'snapshot-unavailable', 'Snapshot unavailable', detail, {
      ...options,
      extras: { retryAfter: 5, ...options.extras },
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
  readonly problems: ReleaseProblem[];
  readonly problemCount: number;

  constructor(problems: ReleaseProblem[], problemCount = problems.length, options: { cause?: unknown } = {}) {
    super(422, 'release-invalid', 'Release invalid', summariseProblems(problems, problemCount), options);
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
export class PointerConflictError extends ConflictError {}
