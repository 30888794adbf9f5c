/**
 * The metric catalogue (schemas/metrics.ts) against the live schema: after migrating, every
 * Enum8 `metric` column equals the catalogue, and a schema that lacks a kind (its migration
 * missed) or has a stray one fails start-up with a message that names the column. Real
 * embedded engine, fresh data directory.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse, queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { checkMetricColumns, loadMigrations, migrate, MetricCatalogueMismatch } from '../lib/migrate.js';
import { METRIC_KINDS, metricEnum8Sql, metricEnumMismatch, METRICS, naturalPerHourSql, naturalUnitSql, parseEnum8 } from '../schemas/metrics.js';
import { capacityQueries } from '../queries/capacity/library.js';
import { parseSqlFile, SqlFileError } from '../queries/capacity/sql-file.js';
import { datasets } from '../queries/datasets/datasets.js';
import { scratchDirs } from './support/temp.js';

const scratch = scratchDirs();

describe('metric catalogue: pure checks', () => {
  it('reads back its own Enum8 and finds no mismatch', () => {
    expect(metricEnum8Sql()).toBe("Enum8('cpu' = 1, 'memory' = 2, 'storage' = 3, 'bandwidth_in' = 4, 'bandwidth_out' = 5, 'gpu' = 6)");
    expect([...parseEnum8(metricEnum8Sql())!.keys()]).toEqual(METRICS);
    expect(metricEnumMismatch(metricEnum8Sql())).toBeUndefined();
  });

  it('names a missing kind, a wrong code, a stray label and a wrong type', () => {
    expect(metricEnumMismatch("Enum8('cpu' = 1, 'memory' = 2, 'storage' = 3, 'bandwidth_in' = 4, 'bandwidth_out' = 5)")).toMatch(/lacks 'gpu'/);
    expect(metricEnumMismatch("Enum8('cpu' = 1, 'memory' = 2, 'storage' = 3, 'bandwidth_in' = 4, 'bandwidth_out' = 5, 'gpu' = 7)")).toMatch(/'gpu' = 7, the catalogue says 6/);
    expect(metricEnumMismatch(`${metricEnum8Sql().slice(0, -1)}, 'tpu' = 7)`)).toMatch(/has 'tpu', which the catalogue does not/);
    expect(metricEnumMismatch('String')).toMatch(/is String, expected Enum8/);
  });
});

describe('metric catalogue: everything that must follow it', () => {
  it('README units table: one row per kind, with its units', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    const table = readme.slice(readme.indexOf('| metric | `value` | base total | quantity | analytics unit |'));
    const rows = table.split('\n').filter((l) => l.startsWith('| `'));
    for (const m of METRICS) {
      const row = rows.find((r) => r.split('|')[1]!.includes(`\`${m}\``));
      expect(row, `README has no units row for ${m}`).toBeDefined();
      const k = METRIC_KINDS[m];
      // "vCPU-hour" appears as "vCPU-hours", "GB" as "GB (10⁹ bytes)": the row names the units.
      expect(row, m).toContain(k.baseUnit);
      expect(row, m).toContain(k.billingUnit);
      expect(row, m).toContain(k.natural.unit);
    }
  });

  it('fills catalogue placeholders in named SQL at load, and refuses unknown ones', () => {
    const head = '-- title: t\n-- description: d\n';
    const f = parseSqlFile(`${head}-- param metric: Enum({{metric_names}})\nSELECT {{natural_unit(metric)}} FROM x WHERE metric = {metric:String}`, 'x');
    expect(f.params[0]!.enumValues).toEqual(METRICS);
    expect(f.body).toContain(`metric = 'gpu', 'GPU'`);
    expect(() => parseSqlFile(`${head}SELECT {{natural_divisor(metric)}}`, 'x')).toThrow(SqlFileError);
    expect(() => parseSqlFile(`${head}SELECT {{metric_names(metric)}}`, 'x')).toThrow(/unknown catalogue placeholder/);
    expect(() => parseSqlFile(`${head}SELECT {{ natural_unit(metric) + 1 }}`, 'x')).toThrow(/placeholder/);
  });

  it('no capacity query or dataset names a natural unit or divisor by hand', () => {
    for (const q of [...capacityQueries(), ...datasets()]) {
      // Every generic metric parameter offers every kind.
      for (const p of q.params.filter((x) => x.name === 'metric')) expect(p.enumValues, q.name).toEqual(METRICS);
      // The old hand-written branches: a catch-all meaning Mbit/s, a unit picked by name.
      expect(q.body, q.name).not.toMatch(/'Mbit\/s'\)/);
      expect(q.body, q.name).not.toMatch(/450000000\)/);
    }
  });
});

describe('metric catalogue: checked against the schema at migration', () => {
  let ch: ClickHouseClient;

  beforeAll(async () => {
    ch = createClickHouse({ CLICKHOUSE_URL: undefined, CLICKHOUSE_USER: 'default', CLICKHOUSE_PASSWORD: '', DATA_DIR: scratch('metric-catalogue-') });
  });
  afterAll(async () => {
    await ch?.close();
  });

  it('fails when the gpu migration is missing: every Enum8 metric column is named', async () => {
    // Exactly the history before 0040: the state a deployment has if the catalogue gains a
    // kind and nobody writes its migration.
    // Recorded as migrate() records them, so the next migrate() applies only 0040.
    await ch.command({ query: 'CREATE DATABASE IF NOT EXISTS billing' });
    await ch.command({
      query: `CREATE TABLE IF NOT EXISTS billing.schema_migrations
              (version UInt32, name String, checksum String, applied_at DateTime('UTC') DEFAULT now())
              ENGINE = MergeTree ORDER BY version`,
    });
    for (const m of loadMigrations().filter((x) => x.version < 40)) {
      for (const s of m.statements) await ch.command({ query: s });
      await ch.insert({ table: 'billing.schema_migrations', values: [{ version: m.version, name: m.name, checksum: m.checksum }], format: 'JSONEachRow' });
    }
    const err = await checkMetricColumns(ch).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(MetricCatalogueMismatch);
    const message = (err as Error).message;
    for (const table of ['billing.samples_raw', 'billing.usage_hourly', 'billing.adjustments_hourly']) {
      expect(message).toContain(`${table}.metric lacks 'gpu'`);
    }
  });

  it('passes once migrated: 0040 added gpu everywhere, metadata only', async () => {
    await ch.command({ query: `INSERT INTO billing.usage_hourly (account_id, hour, metric, resource_id, resource_type, region, base_total, samples, version)
                               VALUES ('acct-old', '2026-01-01 00:00:00', 'cpu', 'vm-old', 'vm', 'eu-west-1', '1.5', 1, 1)` });
    // 0040 and whatever came after it runs (later migrations touch other things); one that
    // replaces an already-applied migration is recorded without running.
    expect(await migrate(ch)).toBe(loadMigrations().filter((m) => m.version >= 40 && m.replaces === undefined).length);
    // No mutation: adding an Enum8 value is a metadata change; the old row reads the same.
    // (Earlier migrations' MATERIALIZE INDEX mutations are listed too: none touches metric.)
    expect(await queryRows(ch, `SELECT command FROM system.mutations WHERE database = 'billing' AND command LIKE '%metric%'`)).toEqual([]);
    expect(await queryRows(ch, `SELECT toString(metric) AS metric, base_total FROM billing.usage_hourly`)).toEqual([{ metric: 'cpu', base_total: '1.5' }]);
    const rows = await queryRows<{ table: string; type: string }>(
      ch,
      `SELECT table, type FROM system.columns WHERE database = 'billing' AND name = 'metric' ORDER BY table`,
    );
    expect(rows.map((r) => r.table)).toEqual(['adjustments_hourly', 'samples_raw', 'usage_hourly']);
    for (const r of rows) expect(r.type).toBe(metricEnum8Sql());
    await expect(checkMetricColumns(ch)).resolves.toBeUndefined();
  });

  it('fails start-up (migrate) when any metric Enum8 differs from the catalogue', async () => {
    await ch.command({ query: `CREATE TABLE billing.stale_metric_probe (metric Enum8('cpu' = 1, 'memory' = 2)) ENGINE = Memory` });
    try {
      await expect(migrate(ch)).rejects.toThrow(/billing\.stale_metric_probe\.metric lacks 'storage'; lacks 'bandwidth_in'.*lacks 'gpu'/);
    } finally {
      await ch.command({ query: 'DROP TABLE billing.stale_metric_probe' });
    }
    await expect(migrate(ch)).resolves.toBe(0);
  });

  it('natural-unit fragments cover every kind and stop on an unknown one instead of guessing', async () => {
    const known = await queryRows<{ metric: string; per_hour: string; unit: string }>(
      ch,
      `SELECT metric, ${naturalPerHourSql()} AS per_hour, ${naturalUnitSql()} AS unit
       FROM (SELECT arrayJoin({metrics:Array(String)}) AS metric) ORDER BY metric`,
      { metrics: METRICS },
    );
    expect(Object.fromEntries(known.map((r) => [r.metric, `${r.per_hour} ${r.unit}`]))).toEqual({
      cpu: '3600 vCPU',
      memory: '3865470566400 GiB',
      storage: '3865470566400 GiB',
      bandwidth_in: '450000000 Mbit/s',
      bandwidth_out: '450000000 Mbit/s',
      gpu: '3600 GPU',
    });
    await expect(queryRows(ch, `SELECT ${naturalPerHourSql()} FROM (SELECT 'tpu' AS metric)`)).rejects.toThrow(/metric kind missing from schemas\/metrics\.ts/);
  });
});
