-- title: Suppression report: what k-anonymity withheld, per period and metric
-- description: Per period and metric, from the rollup's report of each hour
--   (analytics.suppression_hourly_latest: the newest computation of the hour). Counts are
--   resource-hours, one resource reporting the metric for one hour (at hour granularity:
--   resources). resource_hours: all that reported the metric; published: those in a
--   published cell (resource_hours − suppressed); generalized: published with the instance
--   type shown as '*' (and perhaps the zone) to reach k accounts; zone_generalized: of
--   those, with the zone '*' too; label_generalized: with a label value (region, zone or
--   instance type) withheld as '*' because it is not on the allow-list and fewer than k
--   accounts sent it, whether then published or suppressed; suppressed: in a cell still
--   under k accounts at the region level, published nowhere; suppressed_pct: suppressed ÷
--   resource_hours, in %. k: the smallest k an hour of the period was published under, k_max
--   the largest (they differ when K_ANONYMITY changed; 0: recorded before k was kept).
--   hours: hours the report covers. The report is fleet-wide: it has no region.
-- param from: DateTime = now-7d | first hour included (UTC)
-- param to: DateTime = now | end of the range, exclusive
-- param granularity: Enum(hour, day) = day | period length
-- param metric: Enum({{metric_names}})? | only this metric
-- metrics: metric
WITH
report AS (
    -- Generalized counts include the suppressed (suppression comes after generalization):
    -- the published share is taken per hour, never below 0.
    SELECT if({granularity:String} = 'hour', hour, toStartOfDay(hour)) AS period_start,
           metric,
           resources_total,
           resources_suppressed,
           greatest(toInt64(resources_generalized) - resources_suppressed, 0) AS generalized_published,
           greatest(toInt64(resources_zone_generalized) - resources_suppressed, 0) AS zone_generalized_published,
           resources_label_generalized,
           k AS hour_k
    FROM analytics.suppression_hourly_latest
    WHERE hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
      AND ({metric:Nullable(String)} IS NULL OR metric = {metric:Nullable(String)})
)
SELECT period_start,
       metric,
       count() AS hours,
       sum(resources_total) AS resource_hours,
       sum(resources_total) - sum(resources_suppressed) AS published,
       sum(generalized_published) AS generalized,
       sum(zone_generalized_published) AS zone_generalized,
       sum(resources_label_generalized) AS label_generalized,
       sum(resources_suppressed) AS suppressed,
       round(100 * sum(resources_suppressed) / nullIf(sum(resources_total), 0), 2) AS suppressed_pct,
       min(hour_k) AS k,
       max(hour_k) AS k_max
FROM report
GROUP BY period_start, metric
ORDER BY period_start, metric
