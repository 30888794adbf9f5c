/**
 * The embedded engine's own insert path (lib/clickhouse.ts insertNdjson): taken instead of
 * the client's exec path, with the same deduplication by insert_deduplication_token, and a
 * refused payload still reported with the engine's typed error, nothing written.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse, insertNdjson, queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { engineErrorType, isDataRefusal } from '../lib/engine-errors.js';
import { scratchDirs } from './support/temp.js';

describe('embedded inserts through the engine’s own insert path', () => {
  const scratch = scratchDirs();
  let ch: ClickHouseClient;
  /** Calls that went through the client's exec path (the fallback), observed, not replaced. */
  let execCalls = 0;

  beforeAll(async () => {
    ch = createClickHouse({ CLICKHOUSE_URL: undefined, CLICKHOUSE_USER: 'default', CLICKHOUSE_PASSWORD: '', DATA_DIR: path.join(scratch('native-insert-'), 'ch') });
    await ch.command({ query: 'CREATE TABLE t (a UInt32, s String, d Decimal(38, 12)) ENGINE = MergeTree ORDER BY a SETTINGS non_replicated_deduplication_window = 100' });
    const exec = ch.exec.bind(ch);
    ch.exec = ((...args: Parameters<typeof exec>) => {
      execCalls++;
      return exec(...args);
    }) as typeof ch.exec;
  });
  afterAll(() => ch?.close());

  const count = async () => Number((await queryRows<{ n: string }>(ch, 'SELECT count() AS n FROM t'))[0]!.n);

  it('writes compact rows with a column list without the client path, exactly (decimals as text)', async () => {
    const rows = ['[1,"x","0.000000000001"]', '[2,"y","123456789.123456789012"]'].join('\n');
    await insertNdjson(ch, 't (a, s, d)', rows, { insert_deduplication_token: 'tok-1' }, 'JSONCompactEachRow');
    expect(execCalls).toBe(0);
    const got = await queryRows<{ a: number; d: string }>(ch, 'SELECT a, toString(d) AS d FROM t ORDER BY a');
    expect(got).toEqual([{ a: 1, d: '0.000000000001' }, { a: 2, d: '123456789.123456789012' }]);
  });

  it('deduplicates a repeated insert by its token, and writes the same rows under a new token', async () => {
    const before = await count();
    const rows = '[3,"z","1"]\n[4,"w","2"]';
    await insertNdjson(ch, 't (a, s, d)', rows, { insert_deduplication_token: 'tok-2' }, 'JSONCompactEachRow');
    await insertNdjson(ch, 't (a, s, d)', rows, { insert_deduplication_token: 'tok-2' }, 'JSONCompactEachRow');
    expect(await count()).toBe(before + 2);
    await insertNdjson(ch, 't (a, s, d)', rows, { insert_deduplication_token: 'tok-3' }, 'JSONCompactEachRow');
    expect(await count()).toBe(before + 4);
    expect(execCalls).toBe(0);
  });

  it('reports a refused payload with the engine’s typed error and writes none of it', async () => {
    const before = await count();
    const err = await insertNdjson(ch, 't (a, s, d)', '[5,"ok","1"]\n["not a number","x","1"]', {}, 'JSONCompactEachRow').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeDefined();
    expect(engineErrorType(err)).toMatch(/^CANNOT_PARSE_/);
    expect(isDataRefusal(err)).toBe(true);
    expect(execCalls).toBe(1); // the typed error comes from the client path's second attempt
    expect(await count()).toBe(before);
  });
});
