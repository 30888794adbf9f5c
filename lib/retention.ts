/**
 * Retention as ClickHouse TTLs, set from the configuration at start-up so that changing a
 * setting changes the table: raw samples (RAW_RETENTION_DAYS) and the audit trail
 * (AUDIT_RETENTION_MONTHS). Per-account aggregates have no TTL: they live as long as the
 * account plus ACCOUNT_RETENTION_MONTHS after termination (workers/retention-sweep.ts).
 * Anonymized analytics have none at all.
 */
import { z } from 'zod';
import type { ClickHouseClient } from './clickhouse.js';
import { queryRows } from './clickhouse.js';

interface TtlRule {
  table: string;
  /** The TTL expression; built from validated integers only (DDL takes no parameters). */
  expression: string;
}

export function retentionRules(rawDays: number, auditMonths: number): TtlRule[] {
  return [
    { table: 'billing.samples_raw', expression: `usage_hour + toIntervalDay(${Math.trunc(rawDays)})` },
    { table: 'audit.api_calls', expression: `toDateTime(ts) + toIntervalMonth(${Math.trunc(auditMonths)})` },
  ];
}

/** Applies each rule whose expression the table does not carry yet. Returns the tables changed. */
export async function applyRetention(ch: ClickHouseClient, rawDays: number, auditMonths: number): Promise<string[]> {
  const changed: string[] = [];
  for (const rule of retentionRules(rawDays, auditMonths)) {
    const [db, name] = rule.table.split('.') as [string, string];
    const [row] = await queryRows(ch, z.object({ q: z.string() }), 'SELECT create_table_query AS q FROM system.tables WHERE database = {db:String} AND name = {name:String}', { db, name });
    if (row && normalize(row.q).includes(normalize(`TTL ${rule.expression}`))) continue;
    await ch.command({ query: `ALTER TABLE ${rule.table} MODIFY TTL ${rule.expression}` });
    changed.push(rule.table);
  }
  return changed;
}

const normalize = (s: string) => s.replace(/\s+/g, '').toLowerCase();
