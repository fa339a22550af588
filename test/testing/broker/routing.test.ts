import { field } from '../../../src/protocol/index.js';
import { headersMatch, headersMatchMode, topicMatch, topicWords } from '../../../src/testing/index.js';

describe('topicWords', () => {
  it.each([
    ['', []],
    ['a', ['a']],
    ['a.b', ['a', 'b']],
    ['a..b', ['a', '', 'b']],
    ['.', ['', '']],
    ['a.', ['a', '']],
    ['.a', ['', 'a']],
  ])('%j splits into %j', (key, words) => {
    expect(topicWords(key)).toEqual(words);
  });
});

describe('topicMatch (RabbitMQ topic exchange rules)', () => {
  it.each([
    // pattern, routing key, match
    ['a.b.c', 'a.b.c', true],
    ['a.b.c', 'a.b', false],
    ['a.b', 'a.b.c', false],
    ['*', 'a', true],
    ['*', '', false],
    ['*', 'a.b', false],
    ['*.*', 'a.b', true],
    ['a.*', 'a.', true], // * matches an empty word
    ['*.b', '.b', true],
    ['a.*.c', 'a..c', true],
    ['#', '', true], // # matches zero words
    ['#', 'a.b.c', true],
    ['a.#', 'a', true],
    ['a.#', 'a.b.c', true],
    ['a.#', 'b.a', false],
    ['#.a', 'a', true],
    ['#.a', 'x.y.a', true],
    ['#.a', 'a.x', false],
    ['a.#.c', 'a.c', true],
    ['a.#.c', 'a.b.b.c', true],
    ['a.#.c', 'a.b.b.d', false],
    ['#.#', '', true],
    ['#.#', 'a.b', true],
    ['a.#.#.b', 'a.b', true],
    ['*.#', '', false],
    ['*.#', 'a', true],
    ['#.*', 'a.b.c', true],
    ['#.*', '', false],
    ['a.*.#', 'a.b', true],
    ['a.*.#', 'a', false],
    ['', '', true],
    ['', 'a', false],
    ['stock.usd.*', 'stock.usd.nyse', true],
    ['stock.*.nyse', 'stock.eur.nyse', true],
    ['*.nyse', 'stock.usd.nyse', false],
    ['a.b', 'A.B', false],
  ])('%j against %j: %s', (pattern, key, match) => {
    expect(topicMatch(pattern, key)).toBe(match);
  });
});

describe('headersMatch (RabbitMQ headers exchange rules)', () => {
  it('defaults to x-match all', () => {
    expect(headersMatchMode({ a: 1 })).toBe('all');
    expect(headersMatch({ a: 1, b: 'x' }, { a: 1, b: 'x', c: true })).toBe(true);
    expect(headersMatch({ a: 1, b: 'x' }, { a: 1 })).toBe(false);
    expect(headersMatch({ a: 1 }, undefined)).toBe(false);
  });

  it('all with no arguments matches anything; any with none matches nothing', () => {
    expect(headersMatch({}, undefined)).toBe(true);
    expect(headersMatch({ 'x-match': 'all' }, { a: 1 })).toBe(true);
    expect(headersMatch({ 'x-match': 'any' }, { a: 1 })).toBe(false);
  });

  it('any needs one equal header', () => {
    expect(headersMatch({ 'x-match': 'any', a: 1, b: 2 }, { b: 2 })).toBe(true);
    expect(headersMatch({ 'x-match': 'any', a: 1, b: 2 }, { b: 3 })).toBe(false);
  });

  it('ignores x- arguments unless the mode is -with-x', () => {
    expect(headersMatch({ 'x-match': 'all', 'x-tenant': 'a', b: 1 }, { b: 1 })).toBe(true);
    expect(headersMatch({ 'x-match': 'all-with-x', 'x-tenant': 'a', b: 1 }, { b: 1 })).toBe(false);
    expect(headersMatch({ 'x-match': 'all-with-x', 'x-tenant': 'a', b: 1 }, { b: 1, 'x-tenant': 'a' })).toBe(
      true,
    );
    expect(headersMatch({ 'x-match': 'any', 'x-tenant': 'a' }, { 'x-tenant': 'a' })).toBe(false);
    expect(headersMatch({ 'x-match': 'any-with-x', 'x-tenant': 'a' }, { 'x-tenant': 'a' })).toBe(true);
  });

  it('a void binding value matches any value of a present header', () => {
    expect(headersMatch({ a: null }, { a: 'anything' })).toBe(true);
    expect(headersMatch({ a: null }, { b: 1 })).toBe(false);
  });

  it('compares numbers by value whatever their width, and other types exactly', () => {
    expect(headersMatch({ a: 1 }, { a: field.int64(1) })).toBe(true);
    expect(headersMatch({ a: 1 }, { a: 1n })).toBe(true);
    expect(headersMatch({ a: 1 }, { a: '1' })).toBe(false);
    expect(headersMatch({ a: true }, { a: true })).toBe(true);
    expect(headersMatch({ a: new Uint8Array([1, 2]) }, { a: new Uint8Array([1, 2]) })).toBe(true);
    expect(headersMatch({ a: [1, 'x'] }, { a: [1, 'x'] })).toBe(true);
    expect(headersMatch({ a: { b: 1 } }, { a: { b: 1 } })).toBe(true);
  });

  it('refuses unknown x-match values', () => {
    expect(headersMatchMode({ 'x-match': 'some' })).toBeUndefined();
    expect(headersMatchMode({ 'x-match': 'any-with-x' })).toBe('any-with-x');
  });
});
