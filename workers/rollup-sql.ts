/**
 * The SQL that recomputes one hour whole: billing and analytics from the hour's counted
 * samples up to acceptance sequence {through}, each under a new version, so running it
 * again (a retry, a late sample) replaces rather than adds. Most batches never come here:
 * they are folded in incrementally (rollup-fold-sql.ts); this is the reference path for late
 * batches, closing periods and analytics.
 */
import { baseAmountSql } from '../schemas/metrics.js';

/** Base units: gauges are billed per second held; the rest as measured (the catalogue's rule). */
export const BASE = baseAmountSql();
/** Acceptance order: the first copy of a sample is the smallest. */
export const FIRST = `(batch_seq, item)`;
/** A sample's identity besides its id, and what two copies of it must agree on. */
export const NATURAL_KEY = `account_id, resource_id, metric, ts`;
export const PAYLOAD = `value, interval_s, resource_type, region, attributes`;
/** Seconds of windows whose value was held, not measured (the raw row's `estimated`, 0090). */
export const HELD_SECONDS = (t = '') => `sumIf(${t}interval_s, ${t}estimated = 'held')`;

/**
 * On-time samples: accepted before the hour's billing period started closing
 * ({onTimeSeq} is the period's close_seq, or the largest UInt64 while it is open).
 */
export const ROLLUP_USAGE_SQL = `
INSERT INTO billing.usage_hourly
    (account_id, hour, metric, resource_id, resource_type, region, instance_type, zone, base_total, samples, covered_s, held_s, first_start, last_end, through_seq, version)
SELECT account_id, usage_hour, metric, resource_id,
       argMin(resource_type, ${FIRST}), argMin(region, ${FIRST}),
       argMin(attributes['instance_type'], ${FIRST}), argMin(attributes['zone'], ${FIRST}),
       sum(${BASE}), count(), sum(interval_s), ${HELD_SECONDS()}, min(ts - toIntervalSecond(interval_s)), max(ts), {through:UInt64}, {version:UInt64}
FROM billing.counted_samples(hour = {hour:DateTime('UTC')}, through = {through:UInt64})
WHERE batch_seq <= {onTimeSeq:UInt64}
GROUP BY account_id, usage_hour, metric, resource_id`;

/**
 * Replacing by key cannot remove a key: an aggregate row of the hour that this
 * recomputation ({version}) did not produce would stay current. That happens when a fold
 * round that still saw the hour's period open folded a batch numbered after the period's
 * close_seq, and the batch brought a resource the hour had no row for: the closing
 * recomputation counts that batch as late (an adjustment), so it produces no row for the
 * resource, and without this the late usage would be billed twice, in the closed period
 * and again as an adjustment. Every row older than the recomputation whose key it did not
 * write is therefore stale. Listed first (usually none: one read of the hour's keys), then
 * deleted by key, so the delete never runs for nothing.
 */
export const STALE_USAGE_KEYS_SQL = `
SELECT account_id, toString(metric) AS metric, resource_id
FROM billing.usage_hourly
WHERE hour = {hour:DateTime('UTC')} AND version < {version:UInt64}
  AND (account_id, metric, resource_id) NOT IN (
      SELECT account_id, metric, resource_id FROM billing.usage_hourly
      WHERE hour = {hour:DateTime('UTC')} AND version = {version:UInt64})
GROUP BY account_id, metric, resource_id`;

export const DELETE_STALE_USAGE_SQL = `
DELETE FROM billing.usage_hourly
WHERE hour = {hour:DateTime('UTC')} AND version < {version:UInt64}
  AND (account_id, toString(metric), resource_id) IN {stale:Array(Tuple(String, String, String))}`;

/**
 * Late samples: billed in the first period that was still open when they were accepted,
 * i.e. the first period whose close_seq is at or above their sequence number, or else the
 * period after the last one that started closing ({nextOpenPeriod}).
 */
export const ROLLUP_ADJUSTMENTS_SQL = `
INSERT INTO billing.adjustments_hourly
    (account_id, billed_period, hour, metric, resource_id, region, accepted_date, base_total, samples, version)
SELECT account_id,
       if(arrayFirstIndex(s -> s >= batch_seq, {closeSeqs:Array(UInt64)}) > 0,
          {closePeriods:Array(Date)}[arrayFirstIndex(s -> s >= batch_seq, {closeSeqs:Array(UInt64)})],
          {nextOpenPeriod:Date}) AS billed_period,
       usage_hour, metric, resource_id, argMin(region, ${FIRST}), toDate(accepted_at) AS accepted_date,
       sum(${BASE}), count(), {version:UInt64}
FROM billing.counted_samples(hour = {hour:DateTime('UTC')}, through = {through:UInt64})
WHERE batch_seq > {onTimeSeq:UInt64}
GROUP BY account_id, billed_period, usage_hour, metric, resource_id, accepted_date`;

/**
 * Conflicts: natural keys whose copies disagree on the payload, plus ids reused for
 * different natural keys. The first accepted copy stands either way; these are counted.
 */
export const ROLLUP_STATS_SQL = `
INSERT INTO billing.ingest_stats_hourly (hour, received, counted, conflicts, through_seq, version)
SELECT {hour:DateTime('UTC')},
       (SELECT uniqExact(batch_seq, item) FROM billing.samples_raw WHERE usage_hour = {hour:DateTime('UTC')} AND batch_seq <= {through:UInt64}),
       (SELECT count() FROM billing.counted_samples(hour = {hour:DateTime('UTC')}, through = {through:UInt64})),
       (SELECT countIf(payloads > 1) FROM (
            SELECT uniqExact(${PAYLOAD}) AS payloads
            FROM billing.samples_raw WHERE usage_hour = {hour:DateTime('UTC')} AND batch_seq <= {through:UInt64}
            GROUP BY account_id, resource_id, metric, ts))
     + (SELECT countIf(keys > 1) FROM (
            SELECT uniqExact(${NATURAL_KEY}) AS keys
            FROM billing.samples_raw WHERE usage_hour = {hour:DateTime('UTC')} AND batch_seq <= {through:UInt64}
            GROUP BY id)),
       {through:UInt64}, {version:UInt64}`;

/** Looks like a label, not an identifier: short, lower-case, no IP address or long random token. */
const LABEL_SHAPE = (expr: string) => `(match(${expr}, '^[a-z0-9][a-z0-9._-]{0,39}$')
    AND NOT match(${expr}, '^[0-9]+([.][0-9]+){3}$')
    AND NOT match(${expr}, '[a-z0-9]{16,}'))`;

/**
 * An attribute reaches analytics only if it is allow-listed and looks like a label (no
 * e-mail either: '@' is not in the shape). Anything else becomes 'other' ('unknown' when
 * absent).
 */
const SAFE_LABEL = (allowParam: string, expr: string) => `if(
    {${allowParam}:UInt8} = 1 AND ${LABEL_SHAPE(expr)},
    ${expr}, if(${expr} = '', 'unknown', 'other'))`;

/** The hour's would-be label values (label-shaped region, zone and instance type values). */
const LABEL_CANDIDATES = `
SELECT DISTINCT v
FROM (SELECT arrayJoin([region, instance_type, zone]) AS v FROM billing.usage_hourly WHERE hour = {hour:DateTime('UTC')})
WHERE ${LABEL_SHAPE('v')}`;

/**
 * Which of the hour's would-be label values are account or resource ids anywhere in
 * billing: such a value is never a label, however many accounts send it. Account ids lead
 * usage_hourly's sort key and billing.accounts'; resource ids have a bloom filter (0030).
 */
const LABEL_IDENTIFIERS = `
SELECT account_id FROM billing.usage_hourly WHERE account_id IN (${LABEL_CANDIDATES})
UNION ALL
SELECT resource_id FROM billing.usage_hourly WHERE resource_id IN (${LABEL_CANDIDATES})
UNION ALL
SELECT account_id FROM billing.accounts WHERE account_id IN (${LABEL_CANDIDATES})`;

/**
 * A label value (region, zone, instance_type) is published as written only if it is on
 * the operator's allow-list ({labelValues}, {labelPattern}: public names such as regions
 * and instance types) or at least k accounts share it in the hour ({holders}), since a
 * value only a few accounts send can name them (a fake "region" equal to an account id,
 * a project name, a customer's site). Never if it equals an account or resource id
 * (LABEL_IDENTIFIERS, looked up in billing inside the statement, so no list of them travels
 * as a parameter whatever their number): sharing alone does not stop k fake
 * accounts from all sending a victim's id. Anything else becomes '*', exactly as a small
 * cohort's labels do, and the resource goes down the ladder below with it. 'other' and
 * 'unknown' are this product's own placeholders.
 */
const PUBLISHED_LABEL = (expr: string, holders: string) => `if(
    ${expr} NOT IN (${LABEL_IDENTIFIERS})
    AND (${expr} IN ('other', 'unknown', '*')
         OR (${LABEL_SHAPE(expr)}
             AND (has({labelValues:Array(String)}, ${expr}) OR match(${expr}, {labelPattern:String}) OR ${holders} >= {k:UInt32}))),
    ${expr}, '*')`;

/**
 * k-anonymity by generalization along a declared hierarchy. First every label value that
 * is neither allow-listed nor shared by k accounts becomes '*' (PUBLISHED_LABEL). Then each
 * resource's hourly usage lands in the finest cell region × zone × resource_type ×
 * instance_type × metric that covers at least k distinct accounts:
 *   level 0  the fine cell;
 *   level 1  instance_type generalized to '*' (the zone's small cells pooled);
 *   level 2  zone generalized to '*' too (the region's remaining small cells pooled).
 * A level-2 pool still under k accounts is suppressed. Every published cell covers ≥ k.
 * Computed from the hour's per-resource billing rows (one read of a few thousand rows, not
 * of every raw sample again), so analytics count on-time samples: a late sample billed as
 * an adjustment does not change the fleet figures of its closed period.
 */
const COHORT_CTES = `
hour_rows AS (
    -- One row per account × resource × metric: the hour's billing rows, just written.
    SELECT account_id, resource_id, metric, region AS region_in, toString(resource_type) AS resource_type,
           ${SAFE_LABEL('allowInstanceType', 'instance_type')} AS instance_type_in,
           ${SAFE_LABEL('allowZone', 'zone')} AS zone_in,
           base_total AS base,
           samples
    FROM billing.usage_hourly FINAL
    WHERE hour = {hour:DateTime('UTC')}
    -- The hour index skips other hours' granules (safe under FINAL: versions share the hour).
    SETTINGS use_skip_indexes_if_final = 1
),
holders AS (
    -- How many accounts share each value, per dimension, across the whole hour.
    SELECT *,
           uniqExact(account_id) OVER (PARTITION BY region_in) AS region_holders,
           uniqExact(account_id) OVER (PARTITION BY zone_in) AS zone_holders,
           uniqExact(account_id) OVER (PARTITION BY instance_type_in) AS instance_type_holders
    FROM hour_rows
),
labelled AS (
    SELECT account_id, resource_id, metric, resource_type, base, samples,
           ${PUBLISHED_LABEL('region_in', 'region_holders')} AS region,
           ${PUBLISHED_LABEL('zone_in', 'zone_holders')} AS fine_zone,
           ${PUBLISHED_LABEL('instance_type_in', 'instance_type_holders')} AS fine_instance_type,
           -- The values withheld, only to be counted (never written anywhere).
           arrayFilter(x -> x != '', [
               if(region != region_in, concat('region=', region_in), ''),
               if(fine_zone != zone_in, concat('zone=', zone_in), ''),
               if(fine_instance_type != instance_type_in, concat('instance_type=', instance_type_in), '')]) AS withheld
    FROM holders
),
level0 AS (
    SELECT *, uniqExact(account_id) OVER (PARTITION BY region, resource_type, fine_zone, fine_instance_type, metric) AS n0
    FROM labelled
),
level1 AS (
    SELECT *, uniqExact(account_id) OVER (PARTITION BY region, resource_type, fine_zone, metric) AS n1
    FROM level0
    WHERE n0 < {k:UInt32}
),
cells AS (
    SELECT account_id, metric, region, resource_type, base, samples, withheld,
           fine_zone AS cell_zone, fine_instance_type AS cell_instance_type, 0 AS level
    FROM level0 WHERE n0 >= {k:UInt32}
    UNION ALL
    SELECT account_id, metric, region, resource_type, base, samples, withheld,
           if(n1 >= {k:UInt32}, fine_zone, '*'), '*', if(n1 >= {k:UInt32}, 1, 2)
    FROM level1
),
published AS (
    SELECT region, cell_zone, resource_type, cell_instance_type, metric, max(level) AS level,
           max(notEmpty(withheld)) AS labels_withheld,
           uniqExact(account_id) AS accounts, count() AS resources, sum(samples) AS samples,
           sum(base) AS total, avg(toFloat64(base)) AS mean,
           quantileExact(0.5)(toFloat64(base)) AS p50, quantileExact(0.95)(toFloat64(base)) AS p95,
           max(toFloat64(base)) AS max
    FROM cells
    GROUP BY region, cell_zone, resource_type, cell_instance_type, metric
    HAVING accounts >= {k:UInt32}
)`;

export const ROLLUP_ANALYTICS_SQL = `
INSERT INTO analytics.fleet_usage_hourly_versions
    (hour, region, zone, resource_type, instance_type, metric, accounts, resources, samples, total, mean, p50, p95, max, generalized, version)
WITH ${COHORT_CTES}
SELECT {hour:DateTime('UTC')}, region, cell_zone, resource_type, cell_instance_type, toString(metric),
       accounts, resources, samples, total, mean, p50, p95, max,
       level > 0 OR labels_withheld = 1, {version:UInt64}
FROM published`;

export const ROLLUP_SUPPRESSION_SQL = `
INSERT INTO analytics.suppression_hourly
    (hour, metric, resources_total, resources_generalized, resources_zone_generalized, resources_label_generalized,
     label_values_generalized, resources_suppressed, k, version)
WITH ${COHORT_CTES}
SELECT {hour:DateTime('UTC')}, toString(c.metric),
       count(), countIf(c.level >= 1), countIf(c.level = 2),
       -- Resources with a label value withheld, and how many distinct values were withheld.
       countIf(notEmpty(c.withheld)), length(groupUniqArrayArray(c.withheld)),
       countIf((c.region, c.cell_zone, c.resource_type, c.cell_instance_type, c.metric) NOT IN
               (SELECT region, cell_zone, resource_type, cell_instance_type, metric FROM published)),
       {k:UInt32}, {version:UInt64}
FROM cells AS c
GROUP BY c.metric`;

/**
 * Old versions are invisible through the view; pruning reclaims their space in two steps
 * (workers/rollup-prune.ts). First this read lists each hour's versions below its newest…
 */
export const STALE_ANALYTICS_VERSIONS_SQL = `
SELECT toUnixTimestamp(hour) AS stale_hour, toString(version) AS stale_version
FROM (
    SELECT hour, version, max(version) OVER (PARTITION BY hour) AS newest
    FROM (SELECT DISTINCT hour, version FROM analytics.fleet_usage_hourly_versions))
WHERE version < newest
ORDER BY hour, version
LIMIT {limit:UInt32}`;

/**
 * …then this deletes exactly those (hour, version) pairs, given as values. No subquery: a
 * mutation's condition must be deterministic on a replicated table, where every replica
 * applies it to its own parts, so "not the newest version" is decided once, here, not by
 * each replica at its own time. A version written meanwhile is newer than every pair
 * listed, so it is never among them.
 */
export const PRUNE_ANALYTICS_SQL = `
DELETE FROM analytics.fleet_usage_hourly_versions
WHERE (hour, version) IN {stale:Array(Tuple(DateTime('UTC'), UInt64))}`;
