-- title: Days until a region's storage reaches a capacity
-- description: Fits a straight line by least squares (in SQL) to each region's hourly
--   provisioned storage (GiB) over the range, reads it at `to`, and extrapolates to the
--   given capacity. days_to_capacity is empty when storage is not growing, and 0 when the
--   fitted level at `to` already reaches the capacity.
-- param capacity_gib: Float64[0..1e12] | the region's usable storage capacity, GiB
-- param from: DateTime = now-30d | first hour of the fit (UTC)
-- param to: DateTime = now | end of the fit (exclusive) and the instant the forecast starts
-- param region: String? | only this region
-- needs: 7 days
-- metrics: storage
-- projects: days_to_capacity
WITH
hourly AS (
    SELECT region, hour, toFloat64(sum(total)) / 3600 / 1073741824 AS gib
    FROM analytics.fleet_usage_hourly
    WHERE metric = 'storage'
      AND hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
      AND ({region:Nullable(String)} IS NULL OR region = {region:Nullable(String)})
    GROUP BY region, hour
),
fit AS (
    -- x in days relative to `to`, so the intercept is the fitted level at `to`.
    SELECT region,
           count() AS hours,
           max(hour) AS last_hour,
           argMax(gib, hour) AS last_gib,
           simpleLinearRegression((toInt64(toUnixTimestamp(hour)) - toInt64(toUnixTimestamp({to:DateTime('UTC')}))) / 86400, gib) AS line
    FROM hourly
    GROUP BY region
),
projected AS (
    SELECT *,
           tupleElement(line, 1) AS slope,
           tupleElement(line, 2) AS level,
           multiIf(level >= {capacity_gib:Float64}, 0,
                   slope <= 0, NULL,
                   ({capacity_gib:Float64} - level) / slope) AS days
    FROM fit
)
SELECT region,
       hours,
       last_hour AS last_observed_hour,
       round(last_gib, 3) AS storage_gib_last,
       round(slope, 4) AS trend_gib_per_day,
       round(level, 3) AS fitted_gib_at_to,
       {capacity_gib:Float64} AS capacity_gib,
       round(days, 2) AS days_to_capacity,
       addSeconds({to:DateTime('UTC')}, toInt64(days * 86400)) AS reaches_capacity_at
FROM projected
ORDER BY region
