-- A view's column list is fixed when it is created: recreate it so it shows `zone`.
CREATE OR REPLACE VIEW analytics.fleet_usage_hourly AS
SELECT * EXCEPT version
FROM analytics.fleet_usage_hourly_versions
WHERE (hour, version) IN (SELECT hour, max(version) FROM analytics.fleet_usage_hourly_versions GROUP BY hour);
