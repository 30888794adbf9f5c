/**
 * A per-region capacity summary over a time range, from anonymized analytics only: what
 * the demo prints and a planner's first look. Peaks are of hourly fleet totals.
 */
import { z } from 'zod';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';

const SQL = `
SELECT region,
       toString(round(max(cpu) / 3600, 1))                 AS peak_vcpus,
       toString(round(avg(cpu) / 3600, 1))                 AS mean_vcpus,
       toString(round(max(memory) / 3600 / pow(1024, 3), 1)) AS peak_memory_gib,
       toString(round(argMax(storage, hour) / 3600 / pow(1024, 3), 1)) AS storage_gib_now,
       toString(round(sum(egress) / 1e9, 1))               AS egress_gb,
       max(resources)                                      AS resources
FROM (
    SELECT hour, region,
           sumIf(toFloat64(total), metric = 'cpu')           AS cpu,
           sumIf(toFloat64(total), metric = 'memory')        AS memory,
           sumIf(toFloat64(total), metric = 'storage')       AS storage,
           sumIf(toFloat64(total), metric = 'bandwidth_out') AS egress,
           sumIf(resources, metric IN ('cpu', 'storage'))    AS resources
    FROM analytics.fleet_usage_hourly
    WHERE hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
    GROUP BY hour, region
)
GROUP BY region
ORDER BY region`;

export const capacityRowSchema = z.object({
  region: z.string(),
  peak_vcpus: z.string(),
  mean_vcpus: z.string(),
  peak_memory_gib: z.string(),
  storage_gib_now: z.string(),
  egress_gb: z.string(),
  resources: z.coerce.number(),
});
export type CapacityRow = z.infer<typeof capacityRowSchema>;

export async function capacitySummary(ch: ClickHouseClient, fromMs: number, toMs: number): Promise<CapacityRow[]> {
  const rows = await queryRows<unknown>(ch, SQL, { from: fromMs / 1000, to: toMs / 1000 });
  return rows.map((r) => capacityRowSchema.parse(r));
}
