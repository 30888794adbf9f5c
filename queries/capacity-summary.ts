/**
 * A per-region capacity summary over a time range, from anonymized analytics only: what
 * the demo prints and a planner's first look. Peaks are of hourly fleet totals.
 */
import { z } from 'zod';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { METRIC_KINDS, metricSql } from '../schemas/metrics.js';

// Each column is about one named kind (the demo's table); its conversion is the catalogue's:
// hourly totals ÷ the natural unit's base units per hour, egress ÷ the billing divisor (GB).
const perHour = (m: 'cpu' | 'memory' | 'storage' | 'gpu') => METRIC_KINDS[m].natural.perHour;
const SQL = `
SELECT region,
       toString(round(max(cpu) / ${perHour('cpu')}, 1))                 AS peak_vcpus,
       toString(round(avg(cpu) / ${perHour('cpu')}, 1))                 AS mean_vcpus,
       toString(round(max(memory) / ${perHour('memory')}, 1))           AS peak_memory_gib,
       toString(round(argMax(storage, hour) / ${perHour('storage')}, 1)) AS storage_gib_now,
       toString(round(sum(egress) / ${METRIC_KINDS.bandwidth_out.divisor}, 1)) AS egress_gb,
       toString(round(max(gpu) / ${perHour('gpu')}, 1))                 AS peak_gpus,
       toString(round(sum(gpu) / ${METRIC_KINDS.gpu.divisor}, 1))       AS gpu_hours,
       max(resources)                                      AS resources
FROM (
    SELECT hour, region,
           sumIf(toFloat64(total), metric = ${metricSql('cpu')})           AS cpu,
           sumIf(toFloat64(total), metric = ${metricSql('memory')})        AS memory,
           sumIf(toFloat64(total), metric = ${metricSql('storage')})       AS storage,
           sumIf(toFloat64(total), metric = ${metricSql('bandwidth_out')}) AS egress,
           sumIf(toFloat64(total), metric = ${metricSql('gpu')})           AS gpu,
           -- Every VM and database reports cpu, every volume and bucket storage: one each.
           sumIf(resources, metric IN (${metricSql('cpu')}, ${metricSql('storage')}))    AS resources
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
  peak_gpus: z.string(),
  gpu_hours: z.string(),
  resources: z.coerce.number(),
});
export type CapacityRow = z.infer<typeof capacityRowSchema>;

export async function capacitySummary(ch: ClickHouseClient, fromMs: number, toMs: number): Promise<CapacityRow[]> {
  return queryRows(ch, capacityRowSchema, SQL, { from: fromMs / 1000, to: toMs / 1000 });
}
