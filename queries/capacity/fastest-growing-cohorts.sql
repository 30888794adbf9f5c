-- title: Cohorts growing fastest week over week
-- description: Compares each cohort's (region × resource type × instance type × metric)
--   average hourly usage in the 7 days before `to` with the 7 days before those, fastest
--   growing first. Averages are over the hours the cohort was published in each week, in
--   natural units ({{natural_units}}); cohorts absent from either week are left out.
-- param to: DateTime = now | end of the later week, exclusive (UTC)
-- param metric: Enum({{metric_names}})? | only this metric
-- param limit: UInt32[1..1000] = 20 | how many cohorts
-- needs: 14 days before to
-- metrics: metric
WITH
weekly AS (
    SELECT region, resource_type, instance_type, metric,
           hour >= {to:DateTime('UTC')} - toIntervalDay(7) AS is_this_week,
           toFloat64(sum(total)) / uniqExact(hour) AS per_hour
    FROM analytics.fleet_usage_hourly
    WHERE hour >= {to:DateTime('UTC')} - toIntervalDay(14) AND hour < {to:DateTime('UTC')}
      AND ({metric:Nullable(String)} IS NULL OR metric = {metric:Nullable(String)})
    GROUP BY region, resource_type, instance_type, metric, is_this_week
),
paired AS (
    SELECT region, resource_type, instance_type, metric,
           anyIf(per_hour, NOT is_this_week) AS previous,
           anyIf(per_hour, is_this_week) AS current,
           countIf(NOT is_this_week) AS has_previous,
           countIf(is_this_week) AS has_current,
           {{natural_per_hour(metric)}} AS divisor
    FROM weekly
    GROUP BY region, resource_type, instance_type, metric
)
SELECT region,
       resource_type,
       instance_type,
       metric,
       round(previous / divisor, 4) AS previous_week,
       round(current / divisor, 4) AS this_week,
       {{natural_unit(metric)}} AS unit,
       round(100 * (current / previous - 1), 2) AS growth_pct
FROM paired
WHERE has_previous > 0 AND has_current > 0 AND previous > 0
ORDER BY current / previous DESC, region, resource_type, instance_type, metric
LIMIT {limit:UInt32}
