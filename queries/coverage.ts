/**
 * Coverage of an account's usage data in a period: for each metric, the seconds its
 * samples cover against the span from each resource's first window to its last, and the
 * hours inside those spans that are not fully covered (open gaps). With the producers'
 * own sequence gaps (lib/producers.ts), this is what lets billing hold an invoice.
 *
 * Covered is not the same as measured: a pull collector that misses scrapes bridges the gap
 * by holding a gauge's last reading, and marks those samples `estimated: "held"` (0090).
 * Such seconds are billed like any other; here they are counted apart (`held_s`), so
 * `coverage` says whether time is billed and `coverage_measured` whether it was observed.
 */
import BigImport from 'big.js';
import { z } from 'zod';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { METRICS } from '../schemas/sample.js';

const Big = BigImport();

const SQL = `
SELECT metric, count() AS series, toString(sum(covered)) AS covered_s, toString(sum(held)) AS held_s,
       toString(sum(expected)) AS expected_s, toString(sum(gaps)) AS gap_hours
FROM (
    SELECT metric, resource_id, sum(covered_s) AS covered, sum(held_s) AS held,
           dateDiff('second', min(first_start), max(last_end)) AS expected,
           greatest(toInt64(dateDiff('hour', min(hour), max(hour))) - 1, 0) - countIf(covered_s >= 3600 AND inner) AS gaps
    FROM (
        SELECT metric, resource_id, hour, covered_s, held_s, first_start, last_end,
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
  covered_s: z.string().regex(/^\d+$/),
  held_s: z.string().regex(/^\d+$/),
  expected_s: z.string().regex(/^\d+$/),
  gap_hours: z.coerce.number(),
});

export interface CoverageRow {
  metric: (typeof METRICS)[number];
  /** Resources reporting this metric in the period. */
  series: number;
  /** Seconds covered by counted samples: measured_s + held_s. */
  covered_s: string;
  /** Of those, seconds whose value was measured. */
  measured_s: string;
  /** Of those, seconds whose value was held across missed scrapes (samples marked `estimated: "held"`). */
  held_s: string;
  expected_s: string;
  /** covered / expected, 4 decimals (1 = every second of every span is covered). */
  coverage: string;
  /** measured / expected, 4 decimals: 1 only when no second of the spans was held or missing. */
  coverage_measured: string;
  /** Hours inside the resources' spans that are not fully covered. */
  gap_hours: number;
}

/** a / b to 4 places, at most 1 (windows may reach before a span's first start); 1 for an empty span. */
function ratio(a: string, b: string): string {
  const whole = new Big(b);
  const r = whole.eq(0) ? new Big(1) : new Big(a).div(whole);
  return (r.gt(1) ? new Big(1) : r).toFixed(4);
}

export async function accountCoverage(ch: ClickHouseClient, account: string, startMs: number, endMs: number): Promise<CoverageRow[]> {
  const rows = await queryRows(ch, rowSchema, SQL, { account, start: startMs / 1000, end: endMs / 1000 });
  return rows.map((r) => {
    const measured = new Big(r.covered_s).minus(r.held_s).toFixed(0);
    return {
      metric: r.metric,
      series: r.series,
      covered_s: r.covered_s,
      measured_s: measured,
      held_s: r.held_s,
      expected_s: r.expected_s,
      coverage: ratio(r.covered_s, r.expected_s),
      coverage_measured: ratio(measured, r.expected_s),
      gap_hours: r.gap_hours,
    };
  });
}
