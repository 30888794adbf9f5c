/**
 * Coverage of an account's usage data in a period: for each metric, the seconds its
 * samples cover against the span from each resource's first window to its last, and the
 * hours inside those spans that are not fully covered (open gaps). With the producers'
 * own sequence gaps (lib/producers.ts), this is what lets billing hold an invoice.
 */
import BigImport from 'big.js';
import { z } from 'zod';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { METRICS } from '../schemas/sample.js';

const Big = BigImport();

const SQL = `
SELECT metric, count() AS series, toString(sum(covered)) AS covered_s, toString(sum(expected)) AS expected_s, toString(sum(gaps)) AS gap_hours
FROM (
    SELECT metric, resource_id, sum(covered_s) AS covered,
           dateDiff('second', min(first_start), max(last_end)) AS expected,
           greatest(toInt64(dateDiff('hour', min(hour), max(hour))) - 1, 0) - countIf(covered_s >= 3600 AND inner) AS gaps
    FROM (
        SELECT metric, resource_id, hour, covered_s, first_start, last_end,
               hour > min(hour) OVER w AND hour < max(hour) OVER w AS inner
        FROM billing.usage_hourly FINAL
        WHERE account_id = {account:String} AND hour >= {start:DateTime('UTC')} AND hour < {end:DateTime('UTC')}
        WINDOW w AS (PARTITION BY metric, resource_id)
    )
    GROUP BY metric, resource_id
)
GROUP BY metric
ORDER BY metric`;

const rowSchema = z.object({
  metric: z.enum(METRICS),
  series: z.coerce.number(),
  covered_s: z.string(),
  expected_s: z.string(),
  gap_hours: z.coerce.number(),
});

export interface CoverageRow {
  metric: (typeof METRICS)[number];
  /** Resources reporting this metric in the period. */
  series: number;
  covered_s: string;
  expected_s: string;
  /** covered / expected, 4 decimals (1 = every second of every span is covered). */
  coverage: string;
  /** Hours inside the resources' spans that are not fully covered. */
  gap_hours: number;
}

export async function accountCoverage(ch: ClickHouseClient, account: string, startMs: number, endMs: number): Promise<CoverageRow[]> {
  const rows = await queryRows(ch, rowSchema, SQL, { account, start: startMs / 1000, end: endMs / 1000 });
  return rows.map((r) => {
    const expected = new Big(r.expected_s);
    const ratio = expected.eq(0) ? new Big(1) : new Big(r.covered_s).div(expected);
    return { ...r, coverage: (ratio.gt(1) ? new Big(1) : ratio).toFixed(4) };
  });
}
