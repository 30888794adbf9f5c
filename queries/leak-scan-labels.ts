/**
 * The leak scanner's k-anonymity check of published labels, split from the value
 * matching (leak-scan-match.ts) because it judges something else: not whether a value is
 * an identifier, but whether a label value was published for an hour in which too few
 * accounts held it.
 */
import { z } from 'zod';
import { queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { DEFAULT_ANALYTICS_LABEL_PATTERN } from '../schemas/config.js';
import type { LeakHit } from './leak-scan-match.js';

export interface LabelRules {
  /** ANALYTICS_LABEL_PATTERN and ANALYTICS_LABEL_VALUES: labels published however rare. */
  labelPattern?: string;
  labelValues?: readonly string[];
  /** K_ANONYMITY, for hours whose rollup did not record the k it used (older data). */
  k?: number;
}

/**
 * Published label values that neither the allow-list nor k accounts vouch for: every
 * region, zone and instance type in analytics (outside the placeholders '*', 'other' and
 * 'unknown') must be on the allow-list or be held by at least k accounts in its hour's
 * billing rows. The k is the one the rollup recorded for the hour. An hour whose billing
 * rows no longer match what its rollup saw (an erasure since, or the rows' retention) is
 * not judged: fewer holders there prove nothing.
 */
const RARE_LABELS_SQL = `
WITH candidates AS (
    SELECT DISTINCT hour, l.1 AS dim, l.2 AS value
    FROM analytics.fleet_usage_hourly_versions
    ARRAY JOIN [('region', toString(region)), ('zone', toString(zone)), ('instance_type', toString(instance_type))] AS l
    WHERE value NOT IN ('*', 'other', 'unknown') AND NOT match(value, {labelPattern:String}) AND NOT has({labelValues:Array(String)}, value)
),
billed AS (
    SELECT hour, toString(metric) AS metric, count() AS rows
    FROM billing.usage_hourly FINAL
    WHERE hour IN (SELECT hour FROM candidates)
    GROUP BY hour, metric
),
judged AS (
    SELECT s.hour AS hour, max(if(s.k > 0, s.k, {k:UInt32})) AS judged_k
    FROM analytics.suppression_hourly AS s FINAL
    LEFT JOIN billed AS b ON b.hour = s.hour AND b.metric = s.metric
    WHERE s.hour IN (SELECT hour FROM candidates)
    GROUP BY s.hour
    HAVING min(b.rows = s.resources_total) = 1 AND judged_k > 0
),
holders AS (
    SELECT hour, l.1 AS dim, l.2 AS value, uniqExact(account_id) AS accounts
    FROM billing.usage_hourly FINAL
    ARRAY JOIN [('region', toString(region)), ('zone', zone), ('instance_type', instance_type)] AS l
    WHERE hour IN (SELECT hour FROM judged)
    GROUP BY hour, dim, value
)
SELECT c.dim AS dim, c.value AS value, toString(c.hour) AS hour, h.accounts AS accounts, j.judged_k AS k
FROM candidates AS c
INNER JOIN judged AS j ON j.hour = c.hour
LEFT JOIN holders AS h ON h.hour = c.hour AND h.dim = c.dim AND h.value = c.value
WHERE h.accounts < j.judged_k
ORDER BY c.dim, c.value, c.hour
SETTINGS join_use_nulls = 0`;

export async function rareLabelHits(ch: ClickHouseClient, opts: LabelRules): Promise<LeakHit[]> {
  const rows = await queryRows(ch, z.object({ dim: z.string(), value: z.string(), hour: z.string(), accounts: z.coerce.number(), k: z.coerce.number() }), RARE_LABELS_SQL, {
    labelPattern: opts.labelPattern ?? DEFAULT_ANALYTICS_LABEL_PATTERN,
    labelValues: opts.labelValues ?? [],
    k: opts.k ?? 0,
  });
  return rows.map((r) => ({
    source: `analytics.fleet_usage_hourly_versions.${r.dim}`,
    value: r.value,
    reason: `label held by ${r.accounts} account(s) in hour ${r.hour}, fewer than k = ${r.k}, and not on the label allow-list`,
  }));
}
