/**
 * Migrations on the real embedded engine and a real Redis: processes that migrate at the
 * same time apply each migration once (the migration lock), a migration that failed
 * half-way runs again to completion (0021, through the file that replaces it, 0050), and
 * every migration file can run again after a partial failure.
 */
import { Redis } from 'ioredis';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { engineAndRedis } from './support/engine.js';
import { insertNdjson, queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { loadMigrations, MetricCatalogueMismatch, migrate, migrateUnderLock, type Migration } from '../lib/migrate.js';
import { redisKeys } from '../schemas/queues.js';
import { encodeRawRow, RAW_COLUMNS, RAW_ROW_FORMAT, rawInsertTarget, type RawRow } from '../schemas/raw-row.js';

const PREFIX = `umtest-migrations-${process.pid}-${Date.now().toString(36)}`;
const HOUR_S = 1_795_000_000 - (1_795_000_000 % 3600);

/** Statements without comments, whitespace-normalized, with IF [NOT] EXISTS guards removed. */
const unguarded = (m: Migration) => m.statements.map((s) => s.replace(/\s+/g, ' ').replace(/ IF (NOT )?EXISTS/g, '').trim());

describe('migrations', () => {
  let ch: ClickHouseClient;
  let redis: Redis;
  const all = loadMigrations();
  const m0021 = all.find((m) => m.version === 21)!;
  const m0050 = all.find((m) => m.version === 50)!;

  const env = engineAndRedis('migrations', PREFIX, { migrated: false });
  beforeAll(() => {
    ({ ch, redis } = env);
  });
  // One embedded engine per process: each scenario starts from an empty one.
  beforeEach(async () => {
    for (const db of ['billing', 'analytics', 'audit']) await ch.command({ query: `DROP DATABASE IF EXISTS ${db} SYNC` });
  });

  const recorded = async () =>
    (await queryRows<{ version: number; n: string }>(ch, 'SELECT version, count() AS n FROM billing.schema_migrations GROUP BY version ORDER BY version')).map((r) => [Number(r.version), Number(r.n)]);
  const rawRows = (n: number): string =>
    Array.from({ length: n }, (_, i): RawRow => ({
      batch_id: '00000000-0000-4000-8000-000000000001', batch_seq: 1 + Math.floor(i / 10), item: i % 10, id: `id-${i}`, account_id: `a${i % 3}`,
      resource_id: `vm-${i % 5}`, resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', ts: (HOUR_S + 60 + i) * 1000, usage_hour: HOUR_S,
      interval_s: 60, value: '1.5', attributes: {}, accepted_at: (HOUR_S + 7200) * 1000,
    }))
      // As a release before 0090 encoded them (no `estimated`): these rows go into old schemas.
      .map((r) => JSON.stringify((JSON.parse(encodeRawRow(r)) as unknown[]).slice(0, RAW_COLUMNS.indexOf('estimated'))))
      .join('\n') + '\n';
  const insertRaw = (n: number) => {
    const rows = rawRows(n);
    return insertNdjson(ch, rawInsertTarget(rows.slice(0, rows.indexOf('\n'))), rows, {}, RAW_ROW_FORMAT);
  };

  it('replaces 0021 with the same statements, only guarded, and every file can run again', () => {
    expect(m0050.replaces).toBe(21);
    expect(unguarded(m0050)).toEqual(unguarded(m0021));
    // Re-runnable: creations, drops and added columns or indexes are guarded, except in a
    // rebuild that drops its scratch table first; 0021 itself is superseded by 0050.
    for (const m of all.filter((x) => x.version !== 21)) {
      for (const s of m.statements) {
        const flat = s.replace(/\s+/g, ' ');
        const created = /^CREATE (?:TABLE|VIEW|MATERIALIZED VIEW|DICTIONARY) (?!IF NOT EXISTS)([\w.]+)/i.exec(flat)?.[1];
        if (created) expect(m.statements.some((d) => new RegExp(`^DROP (TABLE|VIEW) IF EXISTS ${created.replace('.', '\\.')}\\b`, 'i').test(d)), `${m.name}: ${flat.slice(0, 80)}`).toBe(true);
        expect(/^DROP (TABLE|VIEW|DATABASE|DICTIONARY) (?!IF EXISTS)/i.test(flat), `${m.name}: ${flat.slice(0, 80)}`).toBe(false);
        expect(/\b(ADD|DROP) (COLUMN|INDEX|PROJECTION) (?!IF (NOT )?EXISTS)/i.test(flat), `${m.name}: ${flat.slice(0, 80)}`).toBe(false);
        expect(/^CREATE DATABASE (?!IF NOT EXISTS)/i.test(flat), `${m.name}: ${flat.slice(0, 80)}`).toBe(false);
      }
    }
  });

  it('applies each migration once when processes migrate at the same time, behind the lock', async () => {
    const lockKey = redisKeys(`${PREFIX}:concurrent`).migrationLock;
    const results = await Promise.all([1, 2, 3].map(() => migrateUnderLock(ch, redis, lockKey)));
    // One of them applied everything; the others waited and found nothing left to do.
    expect(results.sort((a, b) => b - a)).toEqual([all.length - 1, 0, 0]); // 0050 runs as 0021
    expect(await recorded()).toEqual(all.map((m) => [m.version, 1]));
    expect(await redis.exists(lockKey)).toBe(0);
  });

  // Where a run of 0021 can stop: after its first statement, after adding the hashes, after
  // the EXCHANGE, after dropping the old table, and after everything but the record.
  for (const stoppedAfter of [1, 3, 5, 6, m0021.statements.length]) {
    it(`runs 0021 again to completion after it stopped after statement ${stoppedAfter} of ${m0021.statements.length}`, async () => {
      // A schema as of 0020: its metric columns predate the catalogue's newest kind.
      await migrate(ch, undefined, all.filter((m) => m.version < 21)).catch((err: unknown) => {
        if (!(err instanceof MetricCatalogueMismatch)) throw err;
      });
      await insertRaw(40);
      for (const s of m0021.statements.slice(0, stoppedAfter)) await ch.command({ query: s });

      expect(await migrate(ch)).toBe(all.filter((m) => m.version > 21 && m.version !== 50).length + 1);
      expect(await recorded()).toEqual(all.map((m) => [m.version, 1]));
      // The rebuilt table: every row once, in the new order, with the hashes.
      const [t] = await queryRows<{ sorting_key: string }>(ch, "SELECT sorting_key FROM system.tables WHERE database = 'billing' AND name = 'samples_raw'");
      expect(t!.sorting_key).toBe('usage_hour, batch_seq, item');
      const [c] = await queryRows<{ n: string; ids: string; hashed: string }>(ch, 'SELECT count() AS n, uniqExact(id) AS ids, countIf(id_hash = cityHash64(id)) AS hashed FROM billing.samples_raw');
      expect(c).toEqual({ n: '40', ids: '40', hashed: '40' });
      expect(await queryRows(ch, "SELECT name FROM system.tables WHERE database = 'billing' AND name = 'samples_raw_next'")).toEqual([]);
      // And the view the rollup reads is there.
      const [v] = await queryRows<{ n: string }>(ch, `SELECT count() AS n FROM billing.counted_samples(hour = ${HOUR_S}, through = 100)`);
      expect(v!.n).toBe('40');
    });
  }

  it('records 0050 without running it where 0021 already ran as written', async () => {
    await migrate(ch, undefined, all.filter((m) => m.version !== 50));
    await insertRaw(10);
    const [before] = await queryRows<{ uuid: string }>(ch, "SELECT toString(uuid) AS uuid FROM system.tables WHERE database = 'billing' AND name = 'samples_raw'");
    expect(await migrate(ch)).toBe(0);
    expect(await recorded()).toEqual(all.map((m) => [m.version, 1]));
    // Not rebuilt: the same table.
    const [after] = await queryRows<{ uuid: string }>(ch, "SELECT toString(uuid) AS uuid FROM system.tables WHERE database = 'billing' AND name = 'samples_raw'");
    expect(after!.uuid).toBe(before!.uuid);
  });

  it('still refuses a migration edited after it ran', async () => {
    await migrate(ch);
    const edited = all.map((m) => (m.version === 21 ? { ...m, checksum: 'edited' } : m));
    await expect(migrate(ch, undefined, edited)).rejects.toThrow(/0021_incremental_rollup.sql changed after it was applied/);
  });
});
