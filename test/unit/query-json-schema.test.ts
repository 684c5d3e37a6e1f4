import { describe, expect, it } from 'vitest';
import openapi from '../../docs/openapi.json';
import { type Schema, validate } from '../support/json-schema';

const root = {
  defs: {
    name: { type: 'string', pattern: '^[a-z]+$' },
    thing: {
      type: 'object',
      required: ['name', 'n'],
      additionalProperties: false,
      properties: {
        name: { $ref: '#/defs/name' },
        n: { type: 'integer', minimum: 1, maximum: 10 },
        tags: { type: 'array', items: { type: 'string' }, maxItems: 2 },
        note: { type: ['string', 'null'] },
        kind: { enum: ['a', 'b'] },
        either: { oneOf: [{ type: 'string' }, { type: 'object', required: ['in'] }] },
      },
    },
  },
};
const thing: Schema = { $ref: '#/defs/thing' };
const errs = (v: unknown) => validate(thing, v, root).map((e) => `${e.path}: ${e.message}`);

describe('the compact JSON Schema validator', () => {
  it('accepts a value that matches every keyword', () => {
    expect(errs({ name: 'abc', n: 3, tags: ['x'], note: null, kind: 'a', either: { in: [] } })).toEqual([]);
  });

  it('names the path of a wrong type, a missing property and an extra property', () => {
    expect(errs({ name: 'abc', n: 'three' })).toEqual(['$.n: expected integer, got string']);
    expect(errs({ name: 'abc' })).toEqual(['$: missing required property "n"']);
    expect(errs({ name: 'abc', n: 1, extra: true })).toEqual(['$.extra: no value is allowed here']);
  });

  it('checks ranges, patterns, enums, array sizes and items', () => {
    expect(errs({ name: 'ABC', n: 11 })).toEqual([
      '$.name: "ABC" does not match ^[a-z]+$',
      '$.n: 11 is above 10',
    ]);
    expect(errs({ name: 'a', n: 1, kind: 'c' })[0]).toMatch(/one of/);
    expect(errs({ name: 'a', n: 1, tags: ['x', 'y', 'z'] })).toEqual(['$.tags: more than 2 items']);
    expect(errs({ name: 'a', n: 1, tags: [1] })).toEqual(['$.tags[0]: expected string, got integer']);
  });

  it('treats a type array as nullable and an integer as a number', () => {
    expect(validate({ type: ['string', 'null'] }, null)).toEqual([]);
    expect(validate({ type: 'number' }, 3)).toEqual([]);
    expect(validate({ type: 'integer' }, 3.5)).toHaveLength(1);
  });

  it('requires exactly one oneOf branch and at least one anyOf branch', () => {
    expect(errs({ name: 'a', n: 1, either: 5 })[0]).toMatch(/none of oneOf/);
    expect(validate({ oneOf: [{ type: 'number' }, { type: 'integer' }] }, 3)[0]?.message).toMatch(
      /2 of oneOf/,
    );
    expect(validate({ anyOf: [{ type: 'number' }, { type: 'integer' }] }, 3)).toEqual([]);
    expect(validate({ const: 200 }, 201)).toHaveLength(1);
  });

  it('refuses schemas with keywords it does not implement, so the document cannot outgrow it silently', () => {
    expect(() => validate({ type: 'object', patternProperties: {} }, {})).toThrow(/unsupported/);
  });

  it('can walk every schema of the OpenAPI document', () => {
    const schemas = (openapi as { components: { schemas: Record<string, Schema> } }).components.schemas;
    for (const name of Object.keys(schemas)) {
      expect(() => validate({ $ref: `#/components/schemas/${name}` }, {}, openapi)).not.toThrow();
    }
  });
});
