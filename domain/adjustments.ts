/**
 * Adjustments: samples that arrived after their period started closing, billed in a later
 * period, dated by the day they were accepted and tied to the period they belong to.
 */
import { z } from 'zod';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { METRICS, type Metric } from '../schemas/sample.js';
import { toQuantity, type Quantity } from './units.js';

/** The newest version of each hour's adjustments: one rollup wrote them all. */
export const CURRENT_ADJUSTMENTS = `
SELECT * FROM billing.adjustments_hourly
WHERE (hour, version) IN (SELECT hour, max(version) FROM billing.adjustments_hourly GROUP BY hour)`;

export interface AdjustmentRow extends Quantity {
  billed_period: string;
  original_period: string;
  accepted_date: string;
  metric: Metric;
}

const rowSchema = z.object({
  billed: z.string(),
  original: z.string(),
  accepted: z.string(),
  metric: z.enum(METRICS),
  total: z.string(),
});

/** An account's adjustments billed in periods starting within [fromMs, toMs). */
export async function queryAccountAdjustments(ch: ClickHouseClient, account: string, fromMs: number, toMs: number): Promise<AdjustmentRow[]> {
  const rows = await queryRows(
    ch,
    rowSchema,
    // Output names differ from the columns: a ClickHouse alias would shadow the column in WHERE.
    `SELECT toString(billed_period) AS billed, toString(toStartOfMonth(hour)) AS original,
            toString(accepted_date) AS accepted, metric, toString(sum(base_total)) AS total
     FROM (${CURRENT_ADJUSTMENTS})
     WHERE account_id = {account:String}
       AND billed_period >= toStartOfMonth({from:DateTime('UTC')}) AND billed_period < {to:DateTime('UTC')}
     GROUP BY billed, original, accepted, metric
     ORDER BY billed, original, accepted, metric`,
    { account, from: fromMs / 1000, to: toMs / 1000 },
  );
  return rows.map((r) => {
    return {
      billed_period: r.billed.slice(0, 7),
      original_period: r.original.slice(0, 7),
      accepted_date: r.accepted,
      metric: r.metric,
      ...toQuantity(r.metric, r.total),
    };
  });
}
