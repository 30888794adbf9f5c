/**
 * Applies the numbered SQL files in schemas/migrations in order, once each, and records
 * them with a checksum: an edited migration that already ran is an error, not a silent
 * drift. The same files run on the embedded engine and on a server. After migrating, the
 * `metric` columns are checked against the metric catalogue (schemas/metrics.ts): a kind
 * added to the catalogue without its migration fails here, at start-up, not at the first
 * insert of that kind.
 *
 * One process at a time: every worker and api process migrates at start, so they take the
 * migration lock (`migrateUnderLock`); the others wait, then find everything applied.
 *
 * Re-running after a failure: a migration is recorded only once all its statements ran,
 * and one that failed half-way runs again from its first statement. So every statement
 * must be idempotent (IF [NOT] EXISTS, or a rebuild that drops its scratch table first;
 * test/migrations.integration.test.ts checks the files). A recorded migration can never
 * change, so one written before this rule is fixed by a new file that `-- replaces:` it:
 * the same statements, made idempotent, run in the old one's place while it is not
 * applied (both are then recorded); where the old one already ran, the new one is
 * recorded without running. 0050 replaces 0021 this way.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { ClickHouseClient } from '@clickhouse/client';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import { queryRows } from './clickhouse.js';
import { withLockWait } from './locks.js';
import { metricEnumMismatch } from '../schemas/metrics.js';

const MIGRATIONS_DIR = new URL('../schemas/migrations/', import.meta.url);

export interface Migration {
  version: number;
  name: string;
  statements: string[];
  checksum: string;
  /** A `-- replaces: NNNN` line: this file runs in migration NNNN's place while NNNN is not applied. */
  replaces?: number;
}

export function loadMigrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{4}_.+\.sql$/.test(f))
    .sort()
    .map((file) => {
      const sql = readFileSync(new URL(file, MIGRATIONS_DIR), 'utf8');
      return parseMigration(file, sql);
    });
}

export function parseMigration(file: string, sql: string): Migration {
  const m: Migration = {
    version: Number(file.slice(0, 4)),
    name: file,
    statements: splitStatements(sql),
    checksum: createHash('sha256').update(sql).digest('hex'),
  };
  const replaces = /^--\s*replaces:\s*(\d{4})\b/m.exec(sql);
  if (replaces) m.replaces = Number(replaces[1]);
  return m;
}

/** Our migration files end each statement with `;` at the end of a line. */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;[ \t]*$/m)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
}

type MigrateLog = { info: (o: object, m: string) => void };

/**
 * `migrate`, holding the migration lock (Redis, lib/locks.ts): waits while another
 * process migrates. Every process that migrates (worker, api, `usage-meter migrate` in
 * server mode) reaches Redis; ClickHouse itself offers no lock that both the embedded
 * engine and a server provide.
 */
export async function migrateUnderLock(ch: ClickHouseClient, redis: Redis, lockKey: string, log?: MigrateLog, migrations?: Migration[]): Promise<number> {
  return withLockWait(redis, lockKey, () => migrate(ch, log, migrations), {
    onWait: (waitedMs) => log?.info({ waitedS: Math.round(waitedMs / 1000) }, 'another process is applying migrations: waiting for it'),
  });
}

export async function migrate(ch: ClickHouseClient, log?: MigrateLog, migrations: Migration[] = loadMigrations()): Promise<number> {
  await ch.command({ query: 'CREATE DATABASE IF NOT EXISTS billing' });
  await ch.command({
    query: `CREATE TABLE IF NOT EXISTS billing.schema_migrations
            (version UInt32, name String, checksum String, applied_at DateTime('UTC') DEFAULT now())
            ENGINE = MergeTree ORDER BY version`,
  });
  const applied = new Map(
    (await queryRows(ch, z.object({ version: z.coerce.number(), checksum: z.string() }), 'SELECT version, checksum FROM billing.schema_migrations')).map(
      (r) => [Number(r.version), r.checksum],
    ),
  );
  const replacements = new Map<number, Migration>();
  for (const m of migrations) {
    if (m.replaces === undefined) continue;
    if (m.replaces >= m.version || replacements.has(m.replaces)) throw new Error(`migration ${m.name}: it may only replace one earlier migration, and each only once`);
    replacements.set(m.replaces, m);
  }
  const record = async (m: Migration) => {
    await ch.insert({ table: 'billing.schema_migrations', values: [{ version: m.version, name: m.name, checksum: m.checksum }], format: 'JSONEachRow' });
    applied.set(m.version, m.checksum);
  };
  let count = 0;
  for (const m of migrations) {
    const seen = applied.get(m.version);
    if (seen !== undefined) {
      if (seen !== m.checksum) throw new Error(`migration ${m.name} changed after it was applied; add a new migration instead`);
      continue;
    }
    if (m.replaces !== undefined && applied.has(m.replaces)) {
      // What it replaces ran as written (or through it): its statements are in place.
      await record(m);
      log?.info({ migration: m.name }, 'recorded migration: the one it replaces is applied');
      continue;
    }
    // A failed earlier attempt left some statements done: each is idempotent (see above).
    const run = replacements.get(m.version) ?? m;
    for (const statement of run.statements) await ch.command({ query: statement });
    await record(m);
    if (run !== m) await record(run);
    log?.info({ migration: m.name, ...(run !== m ? { ranAs: run.name } : {}) }, 'applied migration');
    count++;
  }
  await checkMetricColumns(ch);
  return count;
}

export class MetricCatalogueMismatch extends Error {
  override name = 'MetricCatalogueMismatch';
}

/**
 * Every Enum8 `metric` column (tables and views, any database we own) must hold exactly the
 * catalogue's kinds with their codes. Migrations are immutable history, so the catalogue
 * cannot generate them; this check is what ties the two together. Columns of another type
 * (analytics keeps `metric` as LowCardinality(String)) carry any name and are not checked.
 */
export async function checkMetricColumns(ch: ClickHouseClient): Promise<void> {
  const columns = await queryRows(
    ch,
    z.object({ database: z.string(), table: z.string(), type: z.string() }),
    `SELECT database, table, type FROM system.columns
     WHERE database IN ('billing', 'analytics') AND name = 'metric' AND type LIKE 'Enum%'
     ORDER BY database, table`,
  );
  const problems = columns.flatMap((c) => {
    const why = metricEnumMismatch(c.type);
    return why ? [`${c.database}.${c.table}.metric ${why}`] : [];
  });
  if (problems.length > 0) {
    throw new MetricCatalogueMismatch(
      `the metric catalogue (schemas/metrics.ts) and the schema disagree; add a migration that MODIFY COLUMNs metric ` +
        `(docs/adding-a-metric-kind.md): ${problems.join(' | ')}`,
    );
  }
}
