-- title: Hour-of-week usage profile per region (heat-map data)
-- description: For each region, day of the week (1 = Monday) and hour of the day (UTC):
--   the region's average usage in that hour of the week over the range, in natural units
--   (busy vCPUs, GiB allocated, Mbit/s), how many hours (weeks) went into it, and an index
--   against the region's mean over all its hour-of-week cells (1.0 = average).
-- param metric: Enum(cpu, memory, storage, bandwidth_in, bandwidth_out) = cpu | which metric
-- param from: DateTime = now-28d | first hour included (UTC)
-- param to: DateTime = now | end of the range, exclusive
-- param region: String? | only this region
WITH
hourly AS (
    SELECT region, hour,
           toFloat64(sum(total)) / multiIf({metric:String} = 'cpu', 3600,
                                           {metric:String} IN ('memory', 'storage'), 3600 * 1073741824,
                                           450000000) AS value
    FROM analytics.fleet_usage_hourly
    WHERE metric = {metric:String}
      AND hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
      AND ({region:Nullable(String)} IS NULL OR region = {region:Nullable(String)})
    GROUP BY region, hour
),
cells AS (
    SELECT region, toDayOfWeek(hour) AS day_of_week, toHour(hour) AS hour_of_day,
           count() AS hours, avg(value) AS mean_value
    FROM hourly
    GROUP BY region, day_of_week, hour_of_day
)
SELECT region,
       day_of_week,
       hour_of_day,
       hours,
       round(mean_value, 4) AS value,
       multiIf({metric:String} = 'cpu', 'vCPU', {metric:String} IN ('memory', 'storage'), 'GiB', 'Mbit/s') AS unit,
       round(mean_value / avg(mean_value) OVER (PARTITION BY region), 4) AS index
FROM cells
ORDER BY region, day_of_week, hour_of_day
