/**
 * Applies the numbered SQL files in schemas/migrations in order, once each, and records
 * them with a checksum: an edited migration that already ran is an error, not a silent
 * drift. The same files run on the embedded engine and on a server. After migrating, the
 * `metric` columns are checked against the metric catalogue (schemas/metrics.ts): a kind
 * added to the catalogue without its migration fails here, at start-up, not at the first
 * insert of that kind.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import type { ClickHouseClient } from '@clickhouse/client';
import { z } from 'zod';
import { queryRows } from './clickhouse.js';
import { metricEnumMismatch } from '../schemas/metrics.js';

const MIGRATIONS_DIR = new URL('../schemas/migrations/', import.meta.url);

export interface Migration {
  version: number;
  name: string;
  statements: string[];
  checksum: string;
}

export function loadMigrations(): Migration[] {
  return readdirSync(MIGRATIONS_DIR)
    .filter((f) => /^\d{4}_.+\.sql$/.test(f))
    .sort()
    .map((file) => {
      const sql = readFileSync(new URL(file, MIGRATIONS_DIR), 'utf8');
      return {
        version: Number(file.slice(0, 4)),
        name: file,
        statements: splitStatements(sql),
        checksum: createHash('sha256').update(sql).digest('hex'),
      };
    });
}

/** Our migration files end each statement with `;` at the end of a line. */
export function splitStatements(sql: string): string[] {
  return sql
    .split(/;[ \t]*$/m)
    .map((s) => s.replace(/^\s*--.*$/gm, '').trim())
    .filter((s) => s.length > 0);
}

export async function migrate(ch: ClickHouseClient, log?: { info: (o: object, m: string) => void }): Promise<number> {
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
  let count = 0;
  for (const m of loadMigrations()) {
    const seen = applied.get(m.version);
    if (seen !== undefined) {
      if (seen !== m.checksum) throw new Error(`migration ${m.name} changed after it was applied; add a new migration instead`);
      continue;
    }
    for (const statement of m.statements) await ch.command({ query: statement });
    await ch.insert({
      table: 'billing.schema_migrations',
      values: [{ version: m.version, name: m.name, checksum: m.checksum }],
      format: 'JSONEachRow',
    });
    log?.info({ migration: m.name }, 'applied migration');
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
