-- Zone as a cohort dimension, generalized to '*' (region level) when a cell would cover
-- fewer than k accounts. Existing rows predate zones: '*'.
ALTER TABLE analytics.fleet_usage_hourly_versions
    ADD COLUMN IF NOT EXISTS zone LowCardinality(String) DEFAULT '*' AFTER region;

ALTER TABLE analytics.suppression_hourly
    ADD COLUMN IF NOT EXISTS resources_zone_generalized UInt32 DEFAULT 0 AFTER resources_generalized;
