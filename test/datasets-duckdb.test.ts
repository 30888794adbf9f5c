/**
 * Every training dataset (queries/datasets/, GET /v1/analytics/datasets/:name) as a data
 * scientist loads it, read by DuckDB: an engine that shares no code with ClickHouse or
 * with this project. For each dataset, from a pipeline fed by the fleet simulator:
 * - the Parquet file's column types are what the data card promises, read as DuckDB
 *   types (times as TIMESTAMP WITH TIME ZONE, exact totals as DECIMAL(38,6), no string
 *   where a number belongs);
 * - the CSV file read with DuckDB's own type detection gives zoned timestamps too, and,
 *   cast to the Parquet types, equals the Parquet file row for row (EXCEPT ALL both ways);
 * - row counts equal the data card's, in total and per split, and the split exports
 *   (split=train, split=validation) are exactly the rows of the full export with that
 *   split, with every train hour before validation_from and every validation hour after.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { DuckDBInstance, type DuckDBConnection } from '@duckdb/node-api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFleet, generateSamples } from '../sim/index.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';
import { scratchDirs } from './support/temp.js';

const HOUR = 3_600_000;
const HOURS = 30;
const END = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
const START = END - HOURS * HOUR;
const FROM = START + 2 * HOUR;
const VALIDATION_FROM = END - 6 * HOUR;
const iso = (ms: number) => new Date(ms).toISOString();

const fleet = createFleet({ accounts: 12, resources: 30, seed: 7 });
const tempDir = scratchDirs();

let p: TestPipeline;
let dir: string;
let duck: DuckDBInstance;
let db: DuckDBConnection;
let names: string[] = [];

async function download(pathAndQuery: string): Promise<Buffer> {
  const res = await fetch(`${p.url}${pathAndQuery}`, { headers: { authorization: `Bearer ${KEYS.datascience}` } });
  expect(res.status, pathAndQuery).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

/** Downloads one export to a file DuckDB reads, and returns its path (a SQL string literal). */
async function fetchTo(name: string, format: 'parquet' | 'csv', params: Record<string, string>): Promise<string> {
  const qs = new URLSearchParams({ from: iso(FROM), to: iso(END), validation_from: iso(VALIDATION_FROM), format, ...params });
  const file = path.join(dir, `${name}-${params.split ?? 'all'}.${format}`);
  writeFileSync(file, await download(`/v1/analytics/datasets/${encodeURIComponent(name)}?${qs}`));
  return `'${file.replaceAll("'", "''")}'`;
}

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  return (await db.runAndReadAll(sql)).getRowObjectsJson() as Record<string, unknown>[];
}
async function one(sql: string): Promise<Record<string, unknown>> {
  const [r] = await rows(sql);
  return r!;
}

/** The DuckDB type a ClickHouse column type must arrive as, in either file. */
function duckTypeOf(clickhouse: string): string {
  const inner = /^Nullable\((.*)\)$/.exec(clickhouse)?.[1] ?? clickhouse;
  if (/^DateTime64\(3, 'UTC'\)$/.test(inner) || /^DateTime\('UTC'\)$/.test(inner)) return 'TIMESTAMP WITH TIME ZONE';
  const dec = /^Decimal\((\d+), (\d+)\)$/.exec(inner);
  if (dec) return `DECIMAL(${dec[1]},${dec[2]})`;
  const simple: Record<string, string> = {
    String: 'VARCHAR', Float64: 'DOUBLE', Float32: 'FLOAT',
    UInt8: 'UTINYINT', UInt16: 'USMALLINT', UInt32: 'UINTEGER', UInt64: 'UBIGINT',
    Int8: 'TINYINT', Int16: 'SMALLINT', Int32: 'INTEGER', Int64: 'BIGINT',
  };
  const t = simple[inner] ?? /^LowCardinality\((.*)\)$/.exec(inner)?.[1];
  if (!t) throw new Error(`no DuckDB type known for the ClickHouse type ${clickhouse}: extend duckTypeOf`);
  return simple[t] ?? t;
}

beforeAll(async () => {
  p = await startTestPipeline('datasets-duckdb', { K_ANONYMITY: '2' });
  for (const batch of generateSamples(fleet, { start: START, hours: HOURS, stepS: 3600, batchSize: 2500, duplicateRate: 0, invalidRate: 0 })) {
    expect((await p.post(batch.items)).status).toBe(202);
  }
  await p.waitIdle();
  dir = tempDir('um-duckdb-');
  duck = await DuckDBInstance.create(':memory:');
  db = await duck.connect();
  const list = JSON.parse((await download('/v1/analytics/datasets')).toString('utf8')) as { datasets: { name: string }[] };
  names = list.datasets.map((d) => d.name);
});

afterAll(async () => {
  db?.closeSync();
  duck?.closeSync();
  await p?.stop();
});

describe('datasets read by DuckDB', () => {
  it('lists at least one dataset', () => {
    expect(names.length).toBeGreaterThan(0);
  });

  it('every dataset: Parquet types, CSV = Parquet, row counts and the split', async () => {
    for (const name of names) {
      const card = JSON.parse(
        (await download(`/v1/analytics/datasets/${encodeURIComponent(name)}/card?${new URLSearchParams({ from: iso(FROM), to: iso(END), validation_from: iso(VALIDATION_FROM) })}`)).toString('utf8'),
      ) as { rows: number; columns: { name: string; type: string }[]; split: { train: { rows: number } | null; validation: { rows: number } | null } };
      expect(card.rows, `${name}: the seeded pipeline gives it rows`).toBeGreaterThan(0);
      const parquet = await fetchTo(name, 'parquet', {});
      const csv = await fetchTo(name, 'csv', {});

      // Column names and types, as DuckDB reads the Parquet file.
      const described = await rows(`DESCRIBE SELECT * FROM read_parquet(${parquet})`);
      const got = described.map((c) => [c.column_name, c.column_type]);
      const want = card.columns.map((c) => [c.name, duckTypeOf(c.type)]);
      expect(got, `${name}: Parquet columns`).toEqual(want);
      // What the product promises in words, checked whatever the card says.
      const typeOf = new Map(got as [string, string][]);
      expect(typeOf.get('hour'), name).toBe('TIMESTAMP WITH TIME ZONE');
      if (typeOf.has('total_base')) expect(typeOf.get('total_base'), name).toMatch(/^DECIMAL\(\d+,6\)$/);

      // CSV with DuckDB's own detection: the times carry their zone, so they are zoned.
      const sniffed = new Map((await rows(`DESCRIBE SELECT * FROM read_csv(${csv}, header = true)`)).map((c) => [c.column_name, c.column_type]));
      expect([...sniffed.keys()], `${name}: CSV columns`).toEqual(card.columns.map((c) => c.name));
      expect(sniffed.get('hour'), `${name}: CSV hour`).toBe('TIMESTAMP WITH TIME ZONE');

      // CSV cast to the Parquet types equals the Parquet file, row for row (empty cell = NULL).
      const casts = (got as [string, string][]).map(([col, type]) => `CAST(NULLIF("${col}", '') AS ${type}) AS "${col}"`).join(', ');
      const csvTyped = `SELECT ${casts} FROM read_csv(${csv}, header = true, all_varchar = true)`;
      const counts = await one(`SELECT (SELECT count(*) FROM read_parquet(${parquet})) AS parquet, (SELECT count(*) FROM (${csvTyped})) AS csv`);
      expect(counts, name).toEqual({ parquet: String(card.rows), csv: String(card.rows) });
      const onlyParquet = await one(`SELECT count(*) AS n FROM (SELECT * FROM read_parquet(${parquet}) EXCEPT ALL ${csvTyped})`);
      const onlyCsv = await one(`SELECT count(*) AS n FROM (${csvTyped} EXCEPT ALL SELECT * FROM read_parquet(${parquet}))`);
      expect([onlyParquet.n, onlyCsv.n], `${name}: rows in one form only`).toEqual(['0', '0']);
      // Missing values (a lag a week back: the data holds 30 hours) are NULLs in both, not zeros or 'nan'.
      if (typeOf.has('value_lag_168h')) {
        const nulls = await one(`SELECT count(*) FILTER (WHERE value_lag_168h IS NULL) AS p, (SELECT count(*) FILTER (WHERE value_lag_168h IS NULL) FROM (${csvTyped})) AS c FROM read_parquet(${parquet})`);
        expect(Number(nulls.p), name).toBeGreaterThan(0);
        expect(nulls.c, name).toBe(nulls.p);
      }

      // The split: counts per split equal the card's; each split export is exactly those rows.
      const perSplit = await rows(`SELECT split, count(*) AS n, min(hour) AS first, max(hour) AS last FROM read_parquet(${parquet}) GROUP BY split ORDER BY split`);
      expect(perSplit.map((r) => [r.split, Number(r.n)]), name).toEqual([
        ['train', card.split.train!.rows],
        ['validation', card.split.validation!.rows],
      ]);
      const train = perSplit.find((r) => r.split === 'train')!;
      const validation = perSplit.find((r) => r.split === 'validation')!;
      expect(Date.parse(String(train.last)), `${name}: last train hour`).toBeLessThan(VALIDATION_FROM);
      expect(Date.parse(String(validation.first)), `${name}: first validation hour`).toBeGreaterThanOrEqual(VALIDATION_FROM);
      for (const split of ['train', 'validation'] as const) {
        for (const format of ['parquet', 'csv'] as const) {
          const file = await fetchTo(name, format, { split });
          const part = format === 'parquet' ? `SELECT * FROM read_parquet(${file})` : csvTyped.replace(csv, file);
          const diff = await one(
            `SELECT (SELECT count(*) FROM (${part})) AS n,
                    (SELECT count(*) FROM (${part} EXCEPT ALL SELECT * FROM read_parquet(${parquet}) WHERE split = '${split}')) AS extra,
                    (SELECT count(*) FROM (SELECT * FROM read_parquet(${parquet}) WHERE split = '${split}' EXCEPT ALL ${part})) AS missing`,
          );
          expect(diff, `${name}: split=${split} as ${format}`).toEqual({ n: String(card.split[split]!.rows), extra: '0', missing: '0' });
        }
      }
    }
  });

  it("runs docs/datasets.md's pandas CSV block: counts, split, zoned hours and exact totals as the card and the file say", async () => {
    const doc = readFileSync(new URL('../docs/datasets.md', import.meta.url), 'utf8');
    const block = [...doc.matchAll(/```python\n([\s\S]*?)```/g)].map((m) => m[1]!).find((b) => b.includes('read_csv'));
    expect(block, 'docs/datasets.md has a pandas block reading the CSV').toBeDefined();
    const csvFile = await fetchTo('fleet-demand', 'csv', {});
    const script = block!.replace('"fleet-demand.csv"', JSON.stringify(csvFile.slice(1, -1).replaceAll("''", "'"))) +
      `\nimport json\nprint(json.dumps({"rows": len(csv), "train": len(train), "validation": len(validation), "hour": str(csv.hour.dtype), "total_base": [str(t) for t in csv.total_base]}))\n`;
    // Debian's python3, where apt installs python3-pandas (another python3 may come first on PATH).
    const py = spawnSync('/usr/bin/python3', ['-'], { input: script, encoding: 'utf8' });
    expect(py.error?.message ?? '', 'run /usr/bin/python3 (apt-get install python3-pandas)').toBe('');
    expect(py.status, py.stderr).toBe(0);
    const got = JSON.parse(py.stdout) as { rows: number; train: number; validation: number; hour: string; total_base: string[] };
    const card = JSON.parse(
      (await download(`/v1/analytics/datasets/fleet-demand/card?${new URLSearchParams({ from: iso(FROM), to: iso(END), validation_from: iso(VALIDATION_FROM) })}`)).toString('utf8'),
    ) as { rows: number; split: { train: { rows: number }; validation: { rows: number } } };
    expect({ rows: got.rows, train: got.train, validation: got.validation }).toEqual({ rows: card.rows, train: card.split.train.rows, validation: card.split.validation.rows });
    expect(got.hour).toBe('datetime64[ns, UTC]');
    // The totals as the file writes them, character for character (no float on the way).
    const inFile = (await rows(`SELECT total_base FROM read_csv(${csvFile}, header = true, all_varchar = true)`)).map((r) => String(r.total_base));
    expect(got.total_base).toEqual(inFile);
    expect(inFile.some((t) => /\.\d*[1-9]/.test(t)), 'some total has decimals').toBe(true);
  });

  it("runs docs/datasets.md's SQL: Parquet and CSV give the same answer", async () => {
    const doc = readFileSync(new URL('../docs/datasets.md', import.meta.url), 'utf8');
    const block = /```sql\n([\s\S]*?)```/.exec(doc)?.[1];
    expect(block, 'docs/datasets.md has a sql block').toBeDefined();
    const statements = block!.split(';').map((s) => s.trim()).filter((s) => s.replace(/--.*$/gm, '').trim() !== '');
    expect(statements).toHaveLength(2);
    const parquet = await fetchTo('fleet-demand', 'parquet', {});
    const csv = await fetchTo('fleet-demand', 'csv', {});
    const run = (sql: string) => rows(sql.replace("'fleet-demand.parquet'", parquet).replace("'fleet-demand.csv'", csv));
    const [fromParquet, fromCsv] = [await run(statements[0]!), await run(statements[1]!)];
    expect(fromParquet.length).toBeGreaterThan(0);
    expect(fromParquet.map((r) => r.split)).toContain('validation');
    // Equal to the last digit: sum(total_base) is a decimal sum in both.
    expect(fromCsv).toEqual(fromParquet);
  });
});
