/**
 * A compact JSON Schema (2020-12) validator for the subset docs/openapi.json uses: $ref (local),
 * type (incl. arrays of types), const, enum, properties, required, additionalProperties,
 * minProperties, items, minItems, maxItems, minimum, maximum, minLength, maxLength, pattern,
 * oneOf, anyOf, allOf. Written here rather than depending on ajv, which is only installed as a
 * transitive dependency (v6, draft-07) of an unrelated package.
 */
export type Schema = { [key: string]: unknown } | boolean;

export interface SchemaError {
  path: string;
  message: string;
}

const KNOWN = new Set([
  '$ref',
  'type',
  'const',
  'enum',
  'properties',
  'required',
  'additionalProperties',
  'minProperties',
  'items',
  'minItems',
  'maxItems',
  'minimum',
  'maximum',
  'minLength',
  'maxLength',
  'pattern',
  'oneOf',
  'anyOf',
  'allOf',
  // annotations
  'description',
  'default',
  'title',
  'format',
  'examples',
]);

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function matchesType(v: unknown, t: string): boolean {
  const actual = typeOf(v);
  return actual === t || (t === 'number' && actual === 'integer');
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

function resolve(root: unknown, ref: string): Schema {
  if (!ref.startsWith('#/')) throw new Error(`only local $refs are supported: ${ref}`);
  let node: unknown = root;
  for (const part of ref.slice(2).split('/')) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    node = (node as Record<string, unknown> | undefined)?.[key];
    if (node === undefined) throw new Error(`unresolvable $ref ${ref}`);
  }
  return node as Schema;
}

/** Errors of `value` against `schema`; `root` resolves `$ref`s (the whole OpenAPI document). */
export function validate(schema: Schema, value: unknown, root: unknown = schema, path = '$'): SchemaError[] {
  if (schema === true) return [];
  if (schema === false) return [{ path, message: 'no value is allowed here' }];
  const unknownKeys = Object.keys(schema).filter((k) => !KNOWN.has(k));
  if (unknownKeys.length)
    throw new Error(`schema at ${path} uses unsupported keywords ${unknownKeys.join(', ')}`);
  const errors: SchemaError[] = [];
  const fail = (message: string, at = path) => errors.push({ path: at, message });

  if (typeof schema.$ref === 'string')
    errors.push(...validate(resolve(root, schema.$ref), value, root, path));
  if (schema.type !== undefined) {
    const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
    if (!types.some((t) => matchesType(value, t))) {
      fail(`expected ${types.join(' or ')}, got ${typeOf(value)}`);
      return errors;
    }
  }
  if ('const' in schema && !deepEqual(schema.const, value)) fail(`expected ${JSON.stringify(schema.const)}`);
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => deepEqual(e, value)))
    fail(`expected one of ${JSON.stringify(schema.enum)}, got ${JSON.stringify(value)}`);

  if (typeof value === 'number') {
    if (typeof schema.minimum === 'number' && value < schema.minimum)
      fail(`${value} is below ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && value > schema.maximum)
      fail(`${value} is above ${schema.maximum}`);
  }
  if (typeof value === 'string') {
    const chars = [...value].length;
    if (typeof schema.minLength === 'number' && chars < schema.minLength)
      fail(`shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === 'number' && chars > schema.maxLength)
      fail(`longer than ${schema.maxLength}`);
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern, 'u').test(value))
      fail(`${JSON.stringify(value)} does not match ${schema.pattern}`);
  }
  if (Array.isArray(value)) {
    if (typeof schema.minItems === 'number' && value.length < schema.minItems)
      fail(`fewer than ${schema.minItems} items`);
    if (typeof schema.maxItems === 'number' && value.length > schema.maxItems)
      fail(`more than ${schema.maxItems} items`);
    if (schema.items !== undefined)
      value.forEach((v, i) => {
        errors.push(...validate(schema.items as Schema, v, root, `${path}[${i}]`));
      });
  }
  if (typeOf(value) === 'object') {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    if (typeof schema.minProperties === 'number' && Object.keys(obj).length < schema.minProperties)
      fail(`fewer than ${schema.minProperties} properties`);
    for (const r of (schema.required ?? []) as string[])
      if (!(r in obj)) fail(`missing required property "${r}"`);
    for (const [k, v] of Object.entries(obj)) {
      if (k in props) errors.push(...validate(props[k] as Schema, v, root, `${path}.${k}`));
      else if (schema.additionalProperties !== undefined)
        errors.push(...validate(schema.additionalProperties as Schema, v, root, `${path}.${k}`));
    }
  }
  if (Array.isArray(schema.allOf))
    for (const s of schema.allOf as Schema[]) errors.push(...validate(s, value, root, path));
  if (Array.isArray(schema.anyOf)) {
    const all = (schema.anyOf as Schema[]).map((s) => validate(s, value, root, path));
    if (!all.some((e) => e.length === 0))
      fail(`matches none of anyOf: ${all.map((e) => e[0]?.message).join(' | ')}`);
  }
  if (Array.isArray(schema.oneOf)) {
    const all = (schema.oneOf as Schema[]).map((s) => validate(s, value, root, path));
    const passing = all.filter((e) => e.length === 0).length;
    if (passing === 0)
      fail(`matches none of oneOf: ${all.map((e) => `${e[0]?.path} ${e[0]?.message}`).join(' | ')}`);
    else if (passing > 1) fail(`matches ${passing} of oneOf, expected exactly one`);
  }
  return errors;
}
