-- title: Hour-of-week usage profile per region (heat-map data)
-- description: For each region, day of the week (1 = Monday) and hour of the day (UTC):
--   the region's average usage in that hour of the week over the range, in natural units
--   ({{natural_units}}), how many hours (weeks) went into it, and an index
--   against the region's mean over all its hour-of-week cells (1.0 = average).
-- param metric: Enum({{metric_names}}) = cpu | which metric
-- param from: DateTime = now-28d | first hour included (UTC)
-- param to: DateTime = now | end of the range, exclusive
-- param region: String? | only this region
-- needs: 7 days
-- metrics: metric
WITH
hourly AS (
    -- One metric (the WHERE): grouping by it too only carries it along for its unit.
    SELECT region, hour, metric,
           toFloat64(sum(total)) / {{natural_per_hour(metric)}} AS value
    FROM analytics.fleet_usage_hourly
    WHERE metric = {metric:String}
      AND hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
      AND ({region:Nullable(String)} IS NULL OR region = {region:Nullable(String)})
    GROUP BY region, hour, metric
),
cells AS (
    SELECT region, metric, toDayOfWeek(hour) AS day_of_week, toHour(hour) AS hour_of_day,
           count() AS hours, avg(value) AS mean_value
    FROM hourly
    GROUP BY region, metric, day_of_week, hour_of_day
)
SELECT region,
       day_of_week,
       hour_of_day,
       hours,
       round(mean_value, 4) AS value,
       {{natural_unit(metric)}} AS unit,
       round(mean_value / avg(mean_value) OVER (PARTITION BY region), 4) AS index
FROM cells
ORDER BY region, day_of_week, hour_of_day
