/**
 * Hand-written checks of a JSON object's shape, for the request bodies a function checks on its hot
 * path without loading zod. Each answers exactly what the body's zod schema would for an input it
 * passes (keys in the schema's order, defaults filled, an optional key given as undefined kept as
 * undefined); for anything else it answers undefined and the caller asks the schema, which gives the
 * result or the 400 with its details. So a check may be narrower than its schema, never wider.
 */

/** What a field check answers for a value it does not pass. */
export const FAIL: unique symbol = Symbol('fail');

export interface FieldSpec {
  /** Called for a present, defined value: the value to keep, or FAIL. */
  check: (v: unknown) => unknown;
  /** The value for an absent or undefined field (a zod `.default`). */
  dflt?: () => unknown;
  /** An absent or undefined field fails (neither `.optional()` nor `.default()`). */
  required?: boolean;
}

export type ObjectSpec = Readonly<Record<string, FieldSpec>>;

/**
 * The checked object, or undefined when `raw` is not a plain object, has a field the spec does not
 * name (`strict`, else such fields are dropped as zod drops them) or a field that fails its check.
 */
export function checkObject(
  raw: unknown,
  spec: ObjectSpec,
  strict: boolean,
): Record<string, unknown> | undefined {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return undefined;
  const r = raw as Record<string, unknown>;
  if (strict) for (const key of Object.keys(r)) if (!Object.hasOwn(spec, key)) return undefined;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(spec)) {
    const f = spec[key] as FieldSpec;
    const v = Object.hasOwn(r, key) ? r[key] : undefined;
    if (v === undefined) {
      if (f.required) return undefined;
      if (f.dflt) out[key] = f.dflt();
      else if (Object.hasOwn(r, key)) out[key] = undefined;
      continue;
    }
    const c = f.check(v);
    if (c === FAIL) return undefined;
    out[key] = c;
  }
  return out;
}

export const isInt = (v: unknown, min: number, max: number): v is number =>
  Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;

/** A safe integer in [min, max], as `z.number().int().min(min).max(max)`. */
export const int =
  (min: number, max = Number.MAX_SAFE_INTEGER) =>
  (v: unknown) =>
    isInt(v, min, max) ? v : FAIL;

export const bool = (v: unknown) => (typeof v === 'boolean' ? v : FAIL);

/** A string of length [min, max] in UTF-16 code units, as `z.string().min(min).max(max)`. */
export const str =
  (min = 0, max = Number.POSITIVE_INFINITY) =>
  (v: unknown) =>
    typeof v === 'string' && v.length >= min && v.length <= max ? v : FAIL;

export const oneOf =
  (values: readonly string[]) =>
  (v: unknown): unknown =>
    typeof v === 'string' && values.includes(v) ? v : FAIL;
