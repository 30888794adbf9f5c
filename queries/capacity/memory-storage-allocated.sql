-- title: Memory and storage allocated per region over time, with growth
-- description: Average allocated memory and provisioned storage (GiB) per region and
--   period, from the hourly fleet totals (byte-seconds ÷ 3600), and the change since the
--   region's previous period in the result: in GiB, in % and in GiB per day. A period's
--   average is over the hours that have data for the metric.
-- param from: DateTime = now-90d | first hour included (UTC)
-- param to: DateTime = now | end of the range, exclusive
-- param granularity: Enum(day, week, month) = day | period length (weeks start on Monday)
-- param region: String? | only this region
-- metrics: memory, storage
WITH
hourly AS (
    SELECT hour, region, metric, toFloat64(sum(total)) / {{natural_per_hour(metric)}} AS gib
    FROM analytics.fleet_usage_hourly
    WHERE metric IN ('memory', 'storage')
      AND hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
      AND ({region:Nullable(String)} IS NULL OR region = {region:Nullable(String)})
    GROUP BY hour, region, metric
),
periods AS (
    SELECT multiIf({granularity:String} = 'week', toMonday(hour),
                   {granularity:String} = 'month', toStartOfMonth(hour),
                   toDate(hour)) AS period_start,
           region,
           uniqExact(hour) AS hours,
           if(countIf(metric = 'memory') = 0, NULL, avgIf(gib, metric = 'memory')) AS mem,
           if(countIf(metric = 'storage') = 0, NULL, avgIf(gib, metric = 'storage')) AS sto
    FROM hourly
    GROUP BY period_start, region
),
with_previous AS (
    SELECT *,
           lagInFrame(toNullable(period_start)) OVER w AS previous_start,
           lagInFrame(mem) OVER w AS previous_memory_gib,
           lagInFrame(sto) OVER w AS previous_storage_gib
    FROM periods
    WINDOW w AS (PARTITION BY region ORDER BY period_start ROWS BETWEEN 1 PRECEDING AND CURRENT ROW)
)
SELECT period_start,
       region,
       hours,
       -- Output names differ from the inputs: a ClickHouse alias would shadow the column.
       round(mem, 3) AS memory_gib,
       round(sto, 3) AS storage_gib,
       round(mem - previous_memory_gib, 3) AS memory_change_gib,
       round(sto - previous_storage_gib, 3) AS storage_change_gib,
       round(100 * (sto / nullIf(previous_storage_gib, 0) - 1), 3) AS storage_growth_pct,
       round((sto - previous_storage_gib) / dateDiff('day', previous_start, period_start), 3) AS storage_growth_gib_per_day
FROM with_previous
ORDER BY region, period_start
