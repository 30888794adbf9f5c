/**
 * The canonical billing export of one period: every account's on-time totals per metric,
 * then the adjustments billed in the period, in a fixed order with exact decimal strings.
 * Rendering a closed period twice gives the same bytes; its SHA-256 is recorded at close.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { ClickHouseClient } from '../lib/clickhouse.js';
import { METRICS } from '../schemas/sample.js';
import { CURRENT_ADJUSTMENTS } from './adjustments.js';
import { csvLine } from './export/csv.js';
import { parsePeriod } from '../domain/periods.js';
import { toQuantity } from './units.js';

const SQL = `
SELECT * FROM (
SELECT account_id, 'usage' AS kind, metric, '' AS original_period, '' AS accepted, toString(sum(base_total)) AS base_total
FROM billing.usage_hourly FINAL
WHERE hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')}
GROUP BY account_id, metric
UNION ALL
SELECT account_id, 'adjustment' AS kind, metric, toString(toStartOfMonth(hour)) AS original_period,
       toString(accepted_date) AS accepted, toString(sum(base_total)) AS base_total
FROM (${CURRENT_ADJUSTMENTS})
WHERE billed_period = toDate({start:DateTime('UTC')})
GROUP BY account_id, metric, original_period, accepted
)
ORDER BY account_id, kind DESC, metric, original_period, accepted`;

const rowSchema = z.object({
  account_id: z.string(),
  kind: z.enum(['usage', 'adjustment']),
  metric: z.enum(METRICS),
  original_period: z.string(),
  accepted: z.string(),
  base_total: z.string(),
});

export interface ExportRecord {
  period: string;
  account_id: string;
  kind: 'usage' | 'adjustment';
  metric: (typeof METRICS)[number];
  original_period?: string;
  accepted_date?: string;
  base_total: string;
  base_unit: string;
  quantity: string;
  unit: string;
  quantity_gib_month?: string;
}

/** Streams the period's records in their canonical order. */
export async function* periodRecords(ch: ClickHouseClient, period: string): AsyncGenerator<ExportRecord> {
  const start = parsePeriod(period);
  if (start === undefined) throw new Error(`not a period: ${period}`);
  const end = Date.UTC(new Date(start).getUTCFullYear(), new Date(start).getUTCMonth() + 1, 1);
  const rs = await ch.query({ query: SQL, query_params: { start: start / 1000, end: end / 1000 }, format: 'JSONEachRow' });
  for await (const rows of rs.stream()) {
    for (const row of rows) {
      const r = rowSchema.parse(row.json());
      const rec: ExportRecord = { period, account_id: r.account_id, kind: r.kind, metric: r.metric, ...toQuantity(r.metric, r.base_total) };
      if (r.kind === 'adjustment') {
        rec.original_period = r.original_period.slice(0, 7);
        rec.accepted_date = r.accepted;
      }
      yield rec;
    }
  }
}

export const EXPORT_COLUMNS = ['period', 'account_id', 'kind', 'metric', 'original_period', 'accepted_date', 'base_total', 'base_unit', 'quantity', 'unit', 'quantity_gib_month'] as const;

export function toNdjsonLine(rec: ExportRecord): string {
  return JSON.stringify(Object.fromEntries(EXPORT_COLUMNS.filter((c) => rec[c] !== undefined).map((c) => [c, rec[c]]))) + '\n';
}

/** CSV by the one cell rule (export/csv.ts); the recorded digest is of the NDJSON, never of this. */
export function toCsvLine(rec: ExportRecord): string {
  return csvLine(EXPORT_COLUMNS.map((c) => rec[c]));
}

/** SHA-256 of the period's NDJSON export: what a billing system stores to detect change. */
export async function exportDigest(ch: ClickHouseClient, period: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const rec of periodRecords(ch, period)) hash.update(toNdjsonLine(rec));
  return hash.digest('hex');
}
