/**
 * The SQL that folds newly written batches into the aggregates of their hours without
 * recomputing the hours. Parameters: {hours}, the hours being folded; {from} and
 * {through}, the acceptance sequence range being folded (rows with from < batch_seq <=
 * through, "fresh"); {earlier}, the positions (batch_seq, item) of every earlier row
 * (batch_seq <= from) in those hours that carries the id of an earlier copy of a fresh row
 * (same id or natural key): those copies, and the rows that decide whether each of them
 * counted itself.
 *
 * Why this is exact: which copy of a sample counts depends only on the copies accepted
 * before it in its hour (billing.counted_samples). Rows up to {from} are already folded,
 * and nothing accepted before {from} can arrive later (the rollup only folds up to a
 * sequence no unwritten batch is below; a batch written late is sent to the whole-hour
 * path instead). So the counted rows among the fresh ones are found by running the same
 * first-copy rule over the fresh rows plus those earlier rows, and the aggregates only
 * ever add. Every earlier row sharing an id with an included one is included too, so each
 * included row's own status is exact, and an earlier copy that could make a fresh row a
 * duplicate is always among them.
 *
 * Every aggregate row records the sequence it counts through (through_seq), and a fresh row
 * is only added to a row whose through_seq is below it: folding the same range twice, after
 * a rollup killed mid-round, changes nothing.
 */
import { baseAmountSql } from '../schemas/metrics.js';
import { FIRST, HELD_SECONDS, NATURAL_KEY, PAYLOAD } from './rollup-sql.js';

const HOURS = `{hours:Array(DateTime('UTC'))}`;
const FRESH = `usage_hour IN ${HOURS} AND batch_seq > {from:UInt64} AND batch_seq <= {through:UInt64}`;
const EARLIER = `usage_hour IN ${HOURS} AND batch_seq <= {from:UInt64}`;

/** Hours of the range that have fresh rows, and how many. */
export const FRESH_HOURS_SQL = `
SELECT toUnixTimestamp(usage_hour) AS hour, count() AS rows
FROM billing.samples_raw
WHERE ${FRESH}
GROUP BY hour`;

/**
 * Earlier rows that are earlier copies of fresh rows; the exact comparison after each
 * 8-byte hash removes collisions. By id: a scan of one hash over the hours, since an id can
 * come back with any ts. By natural key: a copy has the fresh row's ts, so the minmax
 * index on ts skips nearly all of the hour. Every earlier row sharing an id with a fresh
 * row is found by id (`by_id`), so the closure only needs another scan for the ids of rows
 * found by their key alone.
 */
export const EARLIER_COPIES_SQL = `
SELECT batch_seq, item, id, 1 AS by_id
FROM billing.samples_raw
PREWHERE ${EARLIER} AND id_hash IN (SELECT id_hash FROM billing.samples_raw WHERE ${FRESH})
WHERE (usage_hour, id) IN (SELECT usage_hour, id FROM billing.samples_raw WHERE ${FRESH})
UNION ALL
SELECT batch_seq, item, id, 0 AS by_id
FROM billing.samples_raw
PREWHERE ${EARLIER} AND ts IN (SELECT ts FROM billing.samples_raw WHERE ${FRESH})
     AND key_hash IN (SELECT key_hash FROM billing.samples_raw WHERE ${FRESH})
WHERE (${NATURAL_KEY}) IN (SELECT ${NATURAL_KEY} FROM billing.samples_raw WHERE ${FRESH})`;

/** Earlier rows carrying {ids}: the rows that decide whether a key-only copy counted itself. */
export const EARLIER_BY_ID_SQL = `
SELECT batch_seq, item
FROM billing.samples_raw
PREWHERE ${EARLIER} AND id_hash IN (SELECT cityHash64(arrayJoin({ids:Array(String)})))
WHERE id IN {ids:Array(String)}`;

/** The fresh rows and the {earlier} rows, and billing.counted_samples' rule over them. */
const UNIVERSE = `
universe AS (
    -- The hashes are MATERIALIZED columns: not part of *.
    SELECT *, id_hash, key_hash FROM billing.samples_raw WHERE ${FRESH}
    UNION ALL
    SELECT *, id_hash, key_hash FROM billing.samples_raw
    WHERE ${EARLIER}
      AND (batch_seq, item) IN (SELECT p.1, p.2 FROM (SELECT arrayJoin({earlier:Array(Tuple(UInt64, UInt32))}) AS p))
),
counted AS (
    SELECT * FROM (SELECT * FROM universe ORDER BY ${FIRST} LIMIT 1 BY usage_hour, id)
    ORDER BY ${FIRST}
    LIMIT 1 BY ${NATURAL_KEY}
)`;

export const FOLD_USAGE_SQL = `
INSERT INTO billing.usage_hourly
    (account_id, hour, metric, resource_id, resource_type, region, instance_type, zone, base_total, samples, covered_s, held_s, first_start, last_end, through_seq, version)
WITH ${UNIVERSE},
current AS (
    -- The hours' aggregate rows (the minmax index on hour skips the others).
    SELECT hour, account_id, metric, resource_id, resource_type, region, instance_type, zone,
           base_total, samples, covered_s, held_s, first_start, last_end, through_seq
    FROM billing.usage_hourly FINAL
    WHERE hour IN ${HOURS}
),
delta AS (
    SELECT f.usage_hour AS d_hour, f.account_id AS d_account, f.metric AS d_metric, f.resource_id AS d_resource,
           argMin(f.resource_type, (f.batch_seq, f.item)) AS d_resource_type,
           argMin(f.region, (f.batch_seq, f.item)) AS d_region,
           argMin(f.attributes['instance_type'], (f.batch_seq, f.item)) AS d_instance_type,
           argMin(f.attributes['zone'], (f.batch_seq, f.item)) AS d_zone,
           sum(${baseAmountSql('f.')}) AS d_base,
           count() AS d_samples, sum(f.interval_s) AS d_covered, ${HELD_SECONDS('f.')} AS d_held,
           min(f.ts - toIntervalSecond(f.interval_s)) AS d_first_start, max(f.ts) AS d_last_end
    FROM counted AS f
    LEFT JOIN current AS c
        ON c.hour = f.usage_hour AND c.account_id = f.account_id AND c.metric = f.metric AND c.resource_id = f.resource_id
    -- Only rows the aggregate does not hold yet (c.through_seq is 0 for a new row).
    WHERE f.batch_seq > {from:UInt64} AND f.batch_seq > c.through_seq
    GROUP BY d_hour, d_account, d_metric, d_resource
)
SELECT d.d_account, d.d_hour, d.d_metric, d.d_resource,
       -- Attributes come from the first counted sample: an existing row's are older.
       if(c.samples > 0, c.resource_type, d.d_resource_type),
       if(c.samples > 0, c.region, d.d_region),
       if(c.samples > 0, c.instance_type, d.d_instance_type),
       if(c.samples > 0, c.zone, d.d_zone),
       c.base_total + d.d_base, c.samples + d.d_samples, c.covered_s + d.d_covered, c.held_s + d.d_held,
       if(c.samples > 0, least(c.first_start, d.d_first_start), d.d_first_start),
       if(c.samples > 0, greatest(c.last_end, d.d_last_end), d.d_last_end),
       {through:UInt64}, {version:UInt64}
FROM delta AS d
LEFT JOIN current AS c
    ON c.hour = d.d_hour AND c.account_id = d.d_account AND c.metric = d.d_metric AND c.resource_id = d.d_resource
-- Skipping granules by the hour index is safe under FINAL: every version of a row has its hour.
SETTINGS join_use_nulls = 0, use_skip_indexes_if_final = 1`;

/**
 * Per hour, how many groups of `groupBy` became conflicts with this fold: groups whose
 * copies now disagree on `distinct` and did not before (rows up to `held`). Only groups
 * that `shared` says hold more than one row can be conflicts.
 */
function conflictDelta(name: string, groupBy: string, distinct: string, shared: string): string {
  return `${name} AS (
    SELECT c_hour, sum(d) AS c_delta FROM (
        SELECT u.usage_hour AS c_hour,
               toInt64(uniqExact(${distinct}) > 1) - toInt64(uniqExactIf((${distinct}), u.batch_seq <= holds.held) > 1) AS d
        FROM universe AS u INNER JOIN holds ON holds.held_hour = u.usage_hour
        WHERE ${shared}
        GROUP BY u.usage_hour, ${groupBy}
        HAVING max(u.batch_seq > holds.held) = 1)
    GROUP BY c_hour
)`;
}

/**
 * Ingest stats of the hours, folded the same way. `held`: rows up to this sequence are
 * already in the hour's stats row. Received copies are counted from the fresh rows alone;
 * counted samples are read back from the hours' aggregate rows, which the usage fold has
 * just brought up to {through} (absolute, so a repeated round cannot count twice). A
 * conflict is a natural key whose copies disagree on the payload, or an id reused for
 * different keys; the universe holds every copy of each fresh row's key and id, so "was it
 * already a conflict" is known exactly. Only keys and ids held by more than one row can be
 * conflicts: the 8-byte hashes find those before the exact grouping.
 */
export const FOLD_STATS_SQL = `
INSERT INTO billing.ingest_stats_hourly (hour, received, counted, conflicts, through_seq, version)
WITH ${UNIVERSE},
current AS (
    SELECT hour, received, conflicts, through_seq FROM billing.ingest_stats_hourly FINAL WHERE hour IN ${HOURS}
),
holds AS (
    SELECT h.hour AS held_hour, greatest({from:UInt64}, c.through_seq) AS held
    FROM (SELECT arrayJoin(${HOURS}) AS hour) AS h
    LEFT JOIN current AS c ON c.hour = h.hour
),
received AS (
    SELECT r.usage_hour AS r_hour, uniqExact(r.batch_seq, r.item) AS r_received
    FROM billing.samples_raw AS r
    INNER JOIN holds ON holds.held_hour = r.usage_hour
    WHERE r.usage_hour IN ${HOURS} AND r.batch_seq > {from:UInt64} AND r.batch_seq <= {through:UInt64} AND r.batch_seq > holds.held
    GROUP BY r_hour
),
counted_now AS (
    SELECT hour AS n_hour, sum(samples) AS n_counted
    FROM billing.usage_hourly FINAL
    WHERE hour IN ${HOURS}
    GROUP BY n_hour
    SETTINGS use_skip_indexes_if_final = 1
),
shared_keys AS (SELECT key_hash FROM universe GROUP BY key_hash HAVING count() > 1),
shared_ids AS (SELECT id_hash FROM universe GROUP BY id_hash HAVING count() > 1),
${conflictDelta('key_conflicts', NATURAL_KEY, PAYLOAD, 'u.key_hash IN shared_keys')},
${conflictDelta('id_conflicts', 'u.id', NATURAL_KEY, 'u.id_hash IN shared_ids')}
SELECT r.r_hour, c.received + r.r_received, n.n_counted,
       toUInt64(toInt64(c.conflicts) + k.c_delta + i.c_delta),
       {through:UInt64}, {version:UInt64}
FROM received AS r
LEFT JOIN current AS c ON c.hour = r.r_hour
LEFT JOIN counted_now AS n ON n.n_hour = r.r_hour
LEFT JOIN key_conflicts AS k ON k.c_hour = r.r_hour
LEFT JOIN id_conflicts AS i ON i.c_hour = r.r_hour
SETTINGS join_use_nulls = 0`;
