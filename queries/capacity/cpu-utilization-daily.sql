-- title: Daily CPU utilization per region × instance type
-- description: For each UTC day, region, resource type and instance type: the average
--   utilization over all resource-hours, the 95th percentile over the day's hours of the
--   cohort's hourly utilization, the worst hourly 95th percentile of a single published
--   cell, and the peak of any single resource-hour. Utilization is vCPU-seconds used ÷
--   (the instance type's vCPUs × 3600), vCPUs from analytics.instance_types; it is empty
--   for generalized cohorts ('*') and unknown instance types, whose usage still shows as
--   average busy vCPUs. Percentiles are exact (the ⌊0.95·n⌋-th of n sorted values, from 0).
-- param from: DateTime = now-30d | first hour included (UTC)
-- param to: DateTime = now | end of the range, exclusive
-- param region: String? | only this region
-- metrics: cpu
WITH
hourly AS (
    -- Cells of one cohort that differ only in zone are summed: the cohort is the unit here.
    SELECT hour, region, resource_type, instance_type,
           sum(total) AS total, sum(resources) AS resources,
           max(p95) AS worst_cell_p95, max(max) AS peak
    FROM analytics.fleet_usage_hourly
    WHERE metric = 'cpu'
      AND hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
      AND ({region:Nullable(String)} IS NULL OR region = {region:Nullable(String)})
    GROUP BY hour, region, resource_type, instance_type
),
shapes AS (
    SELECT instance_type, argMax(vcpus, version) AS vcpus
    FROM analytics.instance_types
    GROUP BY instance_type
)
SELECT toDate(h.hour) AS day,
       h.region AS region,
       h.resource_type AS resource_type,
       h.instance_type AS instance_type,
       nullIf(s.vcpus, 0) AS vcpus,
       count() AS hours,
       sum(h.resources) AS resource_hours,
       round(toFloat64(sum(h.total)) / 3600 / count(), 3) AS avg_busy_vcpus,
       round(toFloat64(sum(h.total)) / (sum(h.resources) * nullIf(s.vcpus, 0) * 3600), 4) AS avg_utilization,
       round(quantileExact(0.95)(toFloat64(h.total) / (h.resources * nullIf(s.vcpus, 0) * 3600)), 4) AS p95_hourly_utilization,
       round(max(h.worst_cell_p95) / (nullIf(s.vcpus, 0) * 3600), 4) AS worst_cell_p95_utilization,
       round(max(h.peak) / (nullIf(s.vcpus, 0) * 3600), 4) AS peak_utilization
FROM hourly AS h
LEFT JOIN shapes AS s ON h.instance_type = s.instance_type
GROUP BY day, region, resource_type, instance_type, vcpus
ORDER BY day, region, resource_type, instance_type
