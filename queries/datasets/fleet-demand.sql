-- title: Fleet demand series, hourly
-- description: One row per hour and series (region × resource type × instance type ×
--   metric): the fleet's usage in natural units with calendar features and lagged values,
--   for training predictive-scaling models. From anonymized analytics only: no account or
--   resource identifier, and every cell behind a row covers at least k accounts. Cells of a
--   series that differ only in zone are summed. Lags and the trailing mean use only hours
--   before the row's own, so no feature sees the row's future; with validation_from, rows
--   before it are `train` and the rest `validation`.
-- schema_version: 1
-- series: region, resource_type, instance_type, metric
-- param from: DateTime = now-30d | first hour exported (UTC); lags may look up to 7 days before it
-- param to: DateTime = now | end of the export, exclusive
-- param validation_from: DateTime? | first hour of the validation split; without it every row is train
-- param split: Enum(all, train, validation) = all | which rows to export
-- column hour: UTC | start of the hour the usage was measured in
-- column region: - | cloud region
-- column resource_type: - | vm, volume, database, bucket, load_balancer or network
-- column instance_type: - | instance type; '*' where cells were generalized to reach k accounts, 'unknown' when not reported
-- column metric: - | one of {{metric_names}}
-- column unit: - | unit of value and of every value_* column: {{natural_units}}
-- column generalized: 0/1 | 1 when a cell behind the row was generalized for k-anonymity
-- column cells: count | published analytics cells summed into the row (one per zone)
-- column min_cell_accounts: accounts | fewest distinct accounts behind any of those cells (never below k)
-- column resources: count | resources that reported the metric in the hour
-- column samples: count | samples counted in the hour
-- column total_base: base_unit | exact hourly total in base units (decimal, 6 places)
-- column base_unit: - | unit of total_base: {{base_units}}
-- column value: unit | hourly demand: total_base ÷ base units per natural-unit hour ({{natural_per_hour_text}})
-- column value_per_resource: unit | value ÷ resources
-- column max_per_resource: unit | the largest single resource's usage in the hour
-- column hour_of_day: 0–23 | UTC hour of the day
-- column day_of_week: 1–7 | ISO day of the week, 1 = Monday (UTC)
-- column is_weekend: 0/1 | 1 on Saturday and Sunday (UTC)
-- column day_of_month: 1–31 | UTC day of the month
-- column month: 1–12 | UTC month
-- column value_lag_1h: unit | value of the same series one hour earlier; empty when that hour has no row
-- column value_lag_24h: unit | value of the same series 24 hours earlier
-- column value_lag_168h: unit | value of the same series 168 hours (one week) earlier
-- column value_mean_prev_24h: unit | mean value of the series over the 24 hours before this one
-- column split: - | train or validation
WITH
cells AS (
    SELECT hour AS ts, region, resource_type, instance_type, metric,
           sum(total) AS total_base, toUInt32(sum(resources)) AS resources, sum(samples) AS samples,
           toUInt32(count()) AS cells, min(accounts) AS min_cell_accounts, max(generalized) AS generalized,
           max(max) AS max_base
    FROM analytics.fleet_usage_hourly
    -- A week before `from` too: the first rows' lags look back that far.
    WHERE hour >= {from:DateTime('UTC')} - toIntervalHour(168) AND hour < {to:DateTime('UTC')}
    GROUP BY ts, region, resource_type, instance_type, metric
),
series AS (
    SELECT *,
           {{natural_per_hour(metric)}} AS divisor,
           toFloat64(total_base) / divisor AS value
    FROM cells
),
features AS (
    SELECT *,
           any(toNullable(value)) OVER lag_1h AS value_lag_1h,
           any(toNullable(value)) OVER lag_24h AS value_lag_24h,
           any(toNullable(value)) OVER lag_168h AS value_lag_168h,
           avg(toNullable(value)) OVER previous_24h AS value_mean_prev_24h
    FROM series
    WINDOW lag_1h AS (PARTITION BY region, resource_type, instance_type, metric ORDER BY ts RANGE BETWEEN 3600 PRECEDING AND 3600 PRECEDING),
           lag_24h AS (PARTITION BY region, resource_type, instance_type, metric ORDER BY ts RANGE BETWEEN 86400 PRECEDING AND 86400 PRECEDING),
           lag_168h AS (PARTITION BY region, resource_type, instance_type, metric ORDER BY ts RANGE BETWEEN 604800 PRECEDING AND 604800 PRECEDING),
           previous_24h AS (PARTITION BY region, resource_type, instance_type, metric ORDER BY ts RANGE BETWEEN 86400 PRECEDING AND 3600 PRECEDING)
)
SELECT toDateTime64(ts, 3, 'UTC') AS hour,
       region,
       resource_type,
       instance_type,
       metric,
       {{natural_unit(metric)}} AS unit,
       generalized,
       cells,
       min_cell_accounts,
       resources,
       samples,
       total_base,
       {{base_unit(metric)}} AS base_unit,
       value,
       value / resources AS value_per_resource,
       max_base / divisor AS max_per_resource,
       toHour(ts) AS hour_of_day,
       toDayOfWeek(ts) AS day_of_week,
       toUInt8(toDayOfWeek(ts) >= 6) AS is_weekend,
       toDayOfMonth(ts) AS day_of_month,
       toMonth(ts) AS month,
       value_lag_1h,
       value_lag_24h,
       value_lag_168h,
       value_mean_prev_24h,
       if({validation_from:Nullable(DateTime('UTC'))} IS NULL OR ts < {validation_from:Nullable(DateTime('UTC'))}, 'train', 'validation') AS split
FROM features
WHERE ts >= {from:DateTime('UTC')} AND ts < {to:DateTime('UTC')}
  AND ({split:String} = 'all' OR split = {split:String})
ORDER BY ts, region, resource_type, instance_type, metric
