import { describe, expect, it } from 'vitest';
import { inlineIntegerParams } from '../lib/inline-integer-params.js';

describe('integer parameters written as literals', () => {
  it('writes integers, DateTimes and arrays (of tuples) of them as CASTs to the placeholder’s type', () => {
    expect(inlineIntegerParams('SELECT {a:UInt64}, {h:DateTime(\'UTC\')}', { a: 7, h: 1_764_460_800 })).toBe(
      "SELECT CAST(7 AS UInt64), CAST(1764460800 AS DateTime('UTC'))",
    );
    expect(inlineIntegerParams("WHERE usage_hour IN {hours:Array(DateTime('UTC'))} AND s > {from:UInt64}", { hours: [3600, 7200], from: 12n })).toBe(
      "WHERE usage_hour IN CAST([3600,7200] AS Array(DateTime('UTC'))) AND s > CAST(12 AS UInt64)",
    );
    expect(inlineIntegerParams("IN {stale:Array(Tuple(DateTime('UTC'), UInt64))}", { stale: [[3600, 5], [7200, 6]] })).toBe(
      "IN CAST([(3600,5),(7200,6)] AS Array(Tuple(DateTime('UTC'), UInt64)))",
    );
    expect(inlineIntegerParams('x IN {e:Array(UInt64)}', { e: [] })).toBe('x IN CAST([] AS Array(UInt64))');
  });

  it('leaves every statement with anything but an integer on the bind path', () => {
    const refused: [string, Record<string, unknown>][] = [
      ['WHERE account_id = {a:String}', { a: "x') OR 1 --" }],
      ['WHERE n = {n:UInt64}', { n: '5' }], // a string, even of digits
      ['WHERE n = {n:UInt64}', { n: 1.5 }],
      ['WHERE n = {n:UInt64}', { n: 2 ** 53 }],
      ['WHERE n = {n:UInt64}', { n: null }],
      ['WHERE v = {v:Decimal(38, 6)}', { v: 1 }],
      ['WHERE n IN {n:Array(UInt64)}', { n: [1, '2'] }],
      ['WHERE n IN {n:Array(String)}', { n: ['a'] }],
      ["IN {t:Array(Tuple(String, UInt64))}", { t: [['a', 1]] }],
      ["IN {t:Array(Tuple(UInt64, UInt64))}", { t: [[1]] }],
      ['WHERE n = {n:UInt64}', {}], // missing
      ['WHERE n = {n:UInt64}', { n: 1, unused: 2 }], // a parameter the text does not use
      ['WHERE n = {n:UInt64} AND a = {a:String}', { n: 1, a: 'b' }], // one string keeps all bound
    ];
    for (const [query, params] of refused) expect(inlineIntegerParams(query, params), query).toBeUndefined();
  });
});
