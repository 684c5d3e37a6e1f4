import { BadRequestError } from './errors';

export const NAME_PATTERN = /^[a-z0-9][a-z0-9_-]{0,62}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what ids may not contain
const CONTROL_CHARS = /[\u0000-\u001f\u007f-\u009f]/;
export const MAX_ID_CHARS = 256;

export type NameKind = 'space' | 'collection' | 'release';

/**
 * Release folder names are the producer's (`ModelV8`, `2026-11-30T10:00:00Z`, `r1.2`): letters of
 * either case, digits, `.`, `_`, `-`, `:` and `+` (timestamps), starting with a letter or digit, at most
 * 128 characters. All are safe in S3 keys and in DynamoDB sort keys (`RELEASE#{release}#{sequencer}`);
 * `/` and `#` are not allowed.
 */
export const RELEASE_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$/;

export function isValidReleaseName(name: string): boolean {
  return RELEASE_NAME_PATTERN.test(name);
}

export function isValidName(name: string): boolean {
  return NAME_PATTERN.test(name);
}

export function assertName(kind: NameKind, name: unknown): string {
  const pattern = kind === 'release' ? RELEASE_NAME_PATTERN : NAME_PATTERN;
  if (typeof name !== 'string' || !pattern.test(name)) {
    throw new BadRequestError(`Invalid ${kind} name ${JSON.stringify(name)}: must match ${pattern.source}`);
  }
  return name;
}

/** Why an item id is not acceptable, or undefined when it is. Length counts Unicode code points. */
export function itemIdProblem(id: unknown): string | undefined {
  if (typeof id !== 'string') return 'id must be a string';
  if (id.length === 0) return 'id is empty';
  const chars = [...id].length;
  if (chars > MAX_ID_CHARS) return `id has ${chars} characters, more than ${MAX_ID_CHARS}`;
  if (CONTROL_CHARS.test(id)) return 'id contains control characters';
  if (!id.isWellFormed()) return 'id is not well-formed Unicode';
  return undefined;
}

export function assertItemId(id: unknown): string {
  const problem = itemIdProblem(id);
  if (problem) throw new BadRequestError(`Invalid item id: ${problem}`);
  return id as string;
}

const VERSION_PATTERN = /^v([1-9][0-9]{0,14})$/;

export function formatVersion(n: number): string {
  return `v${n}`;
}

export function parseVersion(id: string): number | undefined {
  const m = VERSION_PATTERN.exec(id);
  return m ? Number(m[1]) : undefined;
}

export function assertVersion(id: unknown): string {
  if (typeof id !== 'string' || parseVersion(id) === undefined) {
    throw new BadRequestError(
      `Invalid version ${JSON.stringify(id)}: expected "v" followed by a positive integer`,
    );
  }
  return id;
}
