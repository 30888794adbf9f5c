-- title: Usage per region and metric over time
-- description: Per period, region and metric: the region's usage as an hourly level in the
--   metric's natural unit ({{natural_units}}), the sum of every published cell of the
--   region in that hour: all resource types, instance types and zones, the generalized
--   cells ('*') included. avg_value is the mean of those hourly levels over the period's
--   hours with data (hours), peak_value the highest one, unit the natural unit;
--   avg_resources the resources reporting the metric in the region per hour, averaged
--   likewise; generalized_pct the share of the period's usage (in base units) that sits in
--   generalized cells, in %. Region '*' gathers resources whose region was withheld (fewer
--   than k accounts sent it). Resources in cells suppressed for k-anonymity are in no
--   published cell and so in no figure: shaped_by says how many there were.
-- param from: DateTime = now-30d | first hour included (UTC)
-- param to: DateTime = now | end of the range, exclusive
-- param granularity: Enum(hour, day, week, month) = day | period length (weeks start on Monday)
-- param metric: Enum({{metric_names}})? | only this metric
-- param region: String? | only this region
-- metrics: metric
WITH
hourly AS (
    -- Generalized cells are part of the region's usage: summed with the rest, not dropped.
    SELECT hour, region, metric,
           sum(total) AS hour_total,
           sumIf(total, generalized = 1) AS hour_generalized,
           sum(resources) AS hour_resources
    FROM analytics.fleet_usage_hourly
    WHERE hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
      AND ({metric:Nullable(String)} IS NULL OR metric = {metric:Nullable(String)})
      AND ({region:Nullable(String)} IS NULL OR region = {region:Nullable(String)})
    GROUP BY hour, region, metric
)
SELECT multiIf({granularity:String} = 'hour', hour,
               {granularity:String} = 'week', toDateTime(toMonday(hour), 'UTC'),
               {granularity:String} = 'month', toDateTime(toStartOfMonth(hour), 'UTC'),
               toStartOfDay(hour)) AS period_start,
       region,
       metric,
       count() AS hours,
       round(toFloat64(sum(hour_total)) / count() / {{natural_per_hour(metric)}}, 4) AS avg_value,
       round(toFloat64(max(hour_total)) / {{natural_per_hour(metric)}}, 4) AS peak_value,
       {{natural_unit(metric)}} AS unit,
       round(avg(hour_resources), 2) AS avg_resources,
       round(100 * toFloat64(sum(hour_generalized)) / nullIf(toFloat64(sum(hour_total)), 0), 2) AS generalized_pct
FROM hourly
GROUP BY period_start, region, metric
ORDER BY period_start, region, metric
