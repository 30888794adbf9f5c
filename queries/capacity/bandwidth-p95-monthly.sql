-- title: 95th-percentile bandwidth per region per month (burstable billing)
-- description: Per month, region and direction: the region's hourly average rate in
--   Mbit/s, its 95th percentile as burstable billing computes it (sort the month's hourly
--   rates, drop the top 5 %, take the highest left: the ⌈0.95·n⌉-th of n), the peak, the
--   mean, and the month's volume in GB. Only hours with data in the range are counted.
-- param from: DateTime = now-90d | first hour included (UTC)
-- param to: DateTime = now | end of the range, exclusive
-- param region: String? | only this region
-- metrics: bandwidth_in, bandwidth_out
WITH
hourly AS (
    SELECT toStartOfMonth(hour) AS month, region, metric, hour, toFloat64(sum(total)) AS bytes
    FROM analytics.fleet_usage_hourly
    WHERE metric IN ('bandwidth_in', 'bandwidth_out')
      AND hour >= {from:DateTime('UTC')} AND hour < {to:DateTime('UTC')}
      AND ({region:Nullable(String)} IS NULL OR region = {region:Nullable(String)})
    GROUP BY month, region, metric, hour
)
SELECT month,
       region,
       if(metric = 'bandwidth_in', 'in', 'out') AS direction,
       count() AS hours,
       -- ⌈0.95·n⌉ in integers: no float rounding decides which hour is billed.
       round(arrayElement(arraySort(groupArray(bytes)), intDiv(95 * count() + 99, 100)) * 8 / 3600 / 1e6, 3) AS p95_mbps,
       round(max(bytes) * 8 / 3600 / 1e6, 3) AS peak_mbps,
       round(avg(bytes) * 8 / 3600 / 1e6, 3) AS mean_mbps,
       round(sum(bytes) / 1e9, 3) AS volume_gb
FROM hourly
GROUP BY month, region, metric
ORDER BY month, region, direction
