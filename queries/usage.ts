/**
 * An account's usage: GET /v1/accounts/:account/usage. Reads billing.usage_hourly (FINAL:
 * only the newest version of each hour counts) and sums exact base totals per period.
 */
import { z } from 'zod';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { API_TIME_MIN_MS, fromClickHouseDateTime, startOfMonthUtc, timeBoundSchema, toIso } from '../lib/time.js';
import { METRICS, type Metric } from '../schemas/sample.js';
import { toQuantity, type Quantity } from '../domain/units.js';

export const GRANULARITIES = ['hour', 'day', 'month', 'total'] as const;
export const GROUP_BY = ['metric', 'resource_id', 'region'] as const;
type GroupBy = (typeof GROUP_BY)[number];

export const usageRequestSchema = z
  .object({
    from: timeBoundSchema('from', { wholeHour: true }).optional(),
    to: timeBoundSchema('to', { wholeHour: true }).optional(),
    granularity: z.enum(GRANULARITIES, { error: `granularity must be one of ${GRANULARITIES.join(', ')}, given once` }).default('total'),
    group_by: z
      .string({ error: 'group_by must be given once, as a comma-separated list' })
      .max(200, 'group_by must be at most 200 characters')
      .default('metric')
      .transform((s, ctx) => {
        const parts = [...new Set(s.split(',').map((p) => p.trim()).filter(Boolean))];
        const bad = parts.filter((p) => !GROUP_BY.includes(p as GroupBy));
        if (bad.length) {
          ctx.addIssue({ code: 'custom', message: `group_by accepts ${GROUP_BY.join(', ')}; not ${bad.join(', ')}` });
          return z.NEVER;
        }
        // Quantities only add up within one metric, so metric is always a grouping key.
        return ['metric', ...parts.filter((p) => p !== 'metric')] as GroupBy[];
      }),
  })
  .strict();

export type UsageRequest = z.input<typeof usageRequestSchema>;

export interface UsageRow extends Quantity {
  period_start: string;
  metric: Metric;
  resource_id?: string;
  region?: string;
}

export interface UsageQuery {
  account: string;
  fromMs: number;
  toMs: number;
  granularity: (typeof GRANULARITIES)[number];
  groupBy: GroupBy[];
}

/** Resolves defaults (this month so far) and checks the range. */
export function resolveUsageQuery(account: string, raw: unknown, nowMs = Date.now()): UsageQuery | { error: string } {
  const parsed = usageRequestSchema.safeParse(raw);
  if (!parsed.success) {
    return { error: parsed.error.issues.map((i) => (i.code === 'unrecognized_keys' ? `unknown parameter ${i.keys.join(', ')}` : `${i.path.join('.') || 'query'}: ${i.message}`)).join('; ') };
  }
  const { from, to, granularity, group_by } = parsed.data;
  const toMs = to ?? Math.ceil(nowMs / 3_600_000) * 3_600_000;
  // The default start (the month of `to`) never reaches below the floor any bound may name.
  const fromMs = from ?? Math.max(startOfMonthUtc(toMs - 1), API_TIME_MIN_MS);
  if (fromMs >= toMs) return { error: 'from must be before to' };
  if (toMs - fromMs > 400 * 24 * 3_600_000) return { error: 'a range may span at most 400 days' };
  return { account, fromMs, toMs, granularity, groupBy: group_by };
}

// Period expressions are chosen from this fixed map, never built from input.
const PERIOD_SQL: Record<UsageQuery['granularity'], string> = {
  hour: 'hour',
  day: 'toStartOfDay(hour)',
  month: 'toDateTime(toStartOfMonth(hour), \'UTC\')',
  total: '{from:DateTime(\'UTC\')}',
};

const rowSchema = z.object({
  period_start: z.string(),
  metric: z.enum(METRICS),
  resource_id: z.string().optional(),
  region: z.string().optional(),
  base_total: z.string(),
});

export async function queryAccountUsage(ch: ClickHouseClient, q: UsageQuery): Promise<UsageRow[]> {
  const keys = ['period_start', ...q.groupBy];
  const sql = `
    SELECT ${PERIOD_SQL[q.granularity]} AS period_start, ${q.groupBy.join(', ')}, toString(sum(base_total)) AS base_total
    FROM billing.usage_hourly FINAL
    WHERE account_id = {account:String}
      AND hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
    GROUP BY ${keys.join(', ')}
    ORDER BY ${keys.join(', ')}`;
  const rows = await queryRows(ch, rowSchema, sql, { account: q.account, from: q.fromMs / 1000, to: q.toMs / 1000 });
  return rows.map((r) => {
    const out: UsageRow = { period_start: toIso(fromClickHouseDateTime(r.period_start)), metric: r.metric, ...toQuantity(r.metric, r.base_total) };
    if (r.resource_id !== undefined) out.resource_id = r.resource_id;
    if (r.region !== undefined) out.region = r.region;
    return out;
  });
}
