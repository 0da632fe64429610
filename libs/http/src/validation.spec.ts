import { z } from 'zod';
import { inputProblem, parseOrThrow, unknownFields } from './validation';

describe('request input rules', () => {
  it.each([
    ['NUL', { name: 'a\u0000b' }, 'name: control characters are not allowed'],
    ['a C0 control', { a: { b: ['x', 'y\u0007'] } }, 'a.b.1: control characters are not allowed'],
    ['DEL', { name: '\u007f' }, 'name: control characters are not allowed'],
    ['a lone high surrogate', { name: 'x\ud800' }, 'name: a lone UTF-16 surrogate is not valid text'],
    ['a lone low surrogate', { name: '\udc00y' }, 'name: a lone UTF-16 surrogate is not valid text'],
    ['__proto__', JSON.parse('{"__proto__": {"admin": true}}'), '__proto__: field not allowed'],
    ['constructor', { a: { constructor: 1 } }, 'a.constructor: field not allowed'],
    ['prototype', { prototype: 1 }, 'prototype: field not allowed'],
    ['a control character in a key', { 'a\u0001': 1 }, 'field name: control characters are not allowed'],
  ])('refuses %s, naming the field', (_name, value, reason) => {
    expect(inputProblem(value)).toContain(reason);
  });

  it('accepts tab, newline, carriage return, emoji (surrogate pairs) and other text', () => {
    expect(inputProblem({ text: 'a\tb\nc\r\nd 😀 é 中' })).toBeNull();
  });

  it('refuses nesting deeper than 32 levels', () => {
    let value: unknown = 'x';
    for (let i = 0; i < 40; i++) value = { a: value };
    expect(inputProblem(value)).toMatch(/nested deeper/);
  });

  it('finds fields that the schema dropped, at any depth, and stops at transforms', () => {
    const schema = z.object({ a: z.object({ b: z.string() }), list: z.array(z.object({ c: z.number() })) });
    const input = { a: { b: 'x', extra: 1 }, list: [{ c: 1, d: 2 }], top: true };
    expect(unknownFields(input, schema.parse(input))).toEqual(['a.extra', 'list.0.d', 'top']);
    const transformed = z.object({ n: z.string().transform(Number) });
    expect(unknownFields({ n: '1' }, transformed.parse({ n: '1' }))).toEqual([]);
  });

  it('parseOrThrow answers each problem as an invalid request naming the field', () => {
    const schema = z.object({ name: z.string(), count: z.number().int() });
    expect(parseOrThrow(schema, { name: 'a', count: 1 })).toEqual({ name: 'a', count: 1 });
    expect(() => parseOrThrow(schema, { name: 'a', count: 1, role: 'admin' })).toThrow('role: unknown field');
    expect(() => parseOrThrow(schema, JSON.parse('{"name": "a", "count": 1e400}'))).toThrow(/count/);
    expect(() => parseOrThrow(schema, { name: 'a\u0000', count: 1 })).toThrow('name: control characters');
    expect(() => parseOrThrow(schema, [])).toThrow(/invalid request/);
    try {
      parseOrThrow(schema, { name: 1 });
    } catch (error) {
      expect((error as { code: string }).code).toBe('INVALID_REQUEST');
    }
    expect.assertions(6);
  });
});
