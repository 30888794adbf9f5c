/**
 * The billing export's rows, built in one place: the SQL, the row schema, the record and
 * its NDJSON line. The period closer fingerprints a period with `exportDigest`; the paged
 * export (queries/export/usage-export.ts: GET /v1/usage, `usage-meter export`) streams the
 * same rows a page of accounts at a time. Because both come from `exportRecords` here, the
 * pages of a period's export without group_by, concatenated, are byte for byte the NDJSON
 * whose SHA-256 was recorded at close: that equality is by construction, not by a test.
 *
 * Period scope bills what the period bills: its on-time usage, then the adjustments (late
 * samples of earlier, closed periods) billed in it. Range scope reports the usage measured
 * in the hours of a whole-hour range. Quantities are exact decimal strings (units.ts).
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ClickHouseClient } from '../lib/clickhouse.js';
import { toIso } from '../lib/time.js';
import { METRICS, type Metric } from '../schemas/metrics.js';
import { CURRENT_ADJUSTMENTS } from './adjustments.js';
import { nextPeriod, parsePeriod } from './periods.js';
import { toQuantity, type Quantity } from './units.js';

export const EXPORT_GROUP_BY = ['resource_id', 'region'] as const;
export type ExportGroupBy = (typeof EXPORT_GROUP_BY)[number];

/** What an export covers. */
export interface ExportScope {
  mode: 'period' | 'range';
  /** YYYY-MM, period scope only. */
  period?: string;
  fromMs: number;
  toMs: number;
  groupBy: ExportGroupBy[];
}

/** One exported row. Fields that do not apply are absent (NDJSON) or empty (CSV). */
export interface ExportRecord extends Quantity {
  period?: string;
  from?: string;
  to?: string;
  account_id: string;
  kind: 'usage' | 'adjustment';
  metric: Metric;
  resource_id?: string;
  region?: string;
  /** Adjustments: the period the late usage belongs to, and the day it was accepted. */
  original_period?: string;
  accepted_date?: string;
}

/** The canonical column order of a period's export (NDJSON keys and CSV columns). */
export const PERIOD_COLUMNS = ['period', 'account_id', 'kind', 'metric', 'original_period', 'accepted_date', 'base_total', 'base_unit', 'quantity', 'unit', 'quantity_gib_month'] as const;
const RANGE_COLUMNS = ['from', 'to', 'account_id', 'kind', 'metric', 'base_total', 'base_unit', 'quantity', 'unit', 'quantity_gib_month'] as const;

/** Column order of an export: the scope's base columns, with the group-by columns after `metric`. */
export function exportColumns(scope: ExportScope): string[] {
  const base: readonly string[] = scope.mode === 'period' ? PERIOD_COLUMNS : RANGE_COLUMNS;
  const at = base.indexOf('metric') + 1;
  return [...base.slice(0, at), ...scope.groupBy, ...base.slice(at)];
}

export function periodScope(period: string): ExportScope {
  const start = parsePeriod(period);
  if (start === undefined) throw new Error(`not a period: ${period}`);
  return { mode: 'period', period, fromMs: start, toMs: nextPeriod(start), groupBy: [] };
}

/** One row as ClickHouse returns it. */
const rawRowSchema = z.object({
  account_id: z.string(),
  kind: z.enum(['usage', 'adjustment']),
  metric: z.enum(METRICS),
  resource_id: z.string().optional(),
  region: z.string().optional(),
  original_period: z.string(),
  accepted: z.string(),
  base_total: z.string(),
});
type RawExportRow = z.infer<typeof rawRowSchema>;

/** The one row builder. */
export function buildExportRow(raw: RawExportRow, scope: ExportScope): ExportRecord {
  const rec: ExportRecord = {
    ...(scope.mode === 'period' ? { period: scope.period! } : { from: toIso(scope.fromMs), to: toIso(scope.toMs) }),
    account_id: raw.account_id,
    kind: raw.kind,
    metric: raw.metric,
    ...toQuantity(raw.metric, raw.base_total),
  };
  if (raw.resource_id !== undefined) rec.resource_id = raw.resource_id;
  if (raw.region !== undefined) rec.region = raw.region;
  if (raw.kind === 'adjustment') {
    rec.original_period = raw.original_period.slice(0, 7);
    rec.accepted_date = raw.accepted;
  }
  return rec;
}

/** The rows' SQL, optionally narrowed to accounts in [first, last] (one page). */
function rowsSql(scope: ExportScope, accountRange: boolean): string {
  // Group-by columns come from a fixed list (EXPORT_GROUP_BY), never from input text.
  const g = scope.groupBy.map((c) => `, ${c}`).join('');
  const accounts = accountRange ? '\n      AND account_id >= {first:String} AND account_id <= {last:String}' : '';
  const usage = `
    SELECT account_id, 'usage' AS kind, metric${g}, '' AS original_period, '' AS accepted, toString(sum(base_total)) AS base_total
    FROM billing.usage_hourly FINAL
    WHERE hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}${accounts}
    GROUP BY account_id, metric${g}`;
  if (scope.mode === 'range') return `${usage}\nORDER BY account_id, metric${g}`;
  const adjustments = `
    SELECT account_id, 'adjustment' AS kind, metric${g}, toString(toStartOfMonth(hour)) AS original_period,
           toString(accepted_date) AS accepted, toString(sum(base_total)) AS base_total
    FROM (${CURRENT_ADJUSTMENTS})
    WHERE billed_period = toDate({from:DateTime('UTC')})${accounts}
    GROUP BY account_id, metric${g}, original_period, accepted`;
  return `SELECT * FROM (${usage}\nUNION ALL${adjustments})\nORDER BY account_id, kind DESC, metric${g}, original_period, accepted`;
}

/** The export's records in their canonical order: all of them, or one page's accounts. */
export async function* exportRecords(ch: ClickHouseClient, scope: ExportScope, page?: { first: string; last: string }): AsyncGenerator<ExportRecord> {
  const rs = await ch.query({
    query: rowsSql(scope, page !== undefined),
    query_params: { from: scope.fromMs / 1000, to: scope.toMs / 1000, ...page },
    format: 'JSONEachRow',
  });
  for await (const rows of rs.stream()) {
    for (const row of rows) yield buildExportRow(rawRowSchema.parse(row.json()), scope);
  }
}

/** A period's canonical records: every account, on-time usage then adjustments. */
export function periodRecords(ch: ClickHouseClient, period: string): AsyncGenerator<ExportRecord> {
  return exportRecords(ch, periodScope(period));
}

/** One NDJSON line: keys in column order, absent fields left out. */
export function toNdjsonLine(rec: ExportRecord, columns: readonly string[] = PERIOD_COLUMNS): string {
  const r = rec as unknown as Record<string, string | undefined>;
  return JSON.stringify(Object.fromEntries(columns.filter((c) => r[c] !== undefined).map((c) => [c, r[c]]))) + '\n';
}

/** SHA-256 of the period's NDJSON export: what a billing system stores to detect change. */
export async function exportDigest(ch: ClickHouseClient, period: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const rec of periodRecords(ch, period)) hash.update(toNdjsonLine(rec));
  return hash.digest('hex');
}
