-- title: Fleet size per resource type over time
-- description: Resources reporting, per resource type and period: the hourly count (the
--   largest over the type's metrics, since each resource of a type reports all of them)
--   averaged over the period's hours with data, and its peak. Resources in cells
--   suppressed for k-anonymity are not counted (see analytics.suppression_hourly).
-- param from: DateTime = now-30d | first hour included (UTC)
-- param to: DateTime = now | end of the range, exclusive
-- param granularity: Enum(hour, day, week, month) = day | period length (weeks start on Monday)
-- param region: String? | only this region
WITH
per_metric AS (
    SELECT hour, resource_type, metric, sum(resources) AS resources
    FROM analytics.fleet_usage_hourly
    WHERE hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
      AND ({region:Nullable(String)} IS NULL OR region = {region:Nullable(String)})
    GROUP BY hour, resource_type, metric
),
hourly AS (
    SELECT hour, resource_type, max(resources) AS resources
    FROM per_metric
    GROUP BY hour, resource_type
)
SELECT multiIf({granularity:String} = 'hour', hour,
               {granularity:String} = 'week', toDateTime(toMonday(hour), 'UTC'),
               {granularity:String} = 'month', toDateTime(toStartOfMonth(hour), 'UTC'),
               toStartOfDay(hour)) AS period_start,
       resource_type,
       count() AS hours,
       round(avg(resources), 2) AS avg_resources,
       max(resources) AS peak_resources
FROM hourly
GROUP BY period_start, resource_type
ORDER BY period_start, resource_type
