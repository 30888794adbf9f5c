-- Fleet usage per hour by cohort (region × resource_type × instance_type × metric): no
-- account or resource identifier, and no cell covering fewer than k accounts. Each rollup
-- of an hour writes a complete new `version` of that hour; readers use the view below.
CREATE TABLE IF NOT EXISTS analytics.fleet_usage_hourly_versions
(
    hour          DateTime('UTC'),
    region        LowCardinality(String),
    resource_type LowCardinality(String),
    -- '*' where the cell was generalized to reach k accounts.
    instance_type LowCardinality(String),
    metric        LowCardinality(String),
    accounts      UInt32,
    resources     UInt32,
    samples       UInt64,
    -- Sum of base units (vCPU-seconds, byte-seconds, bytes), exact.
    total         Decimal(38, 6),
    -- Distribution over resources of each resource's hourly base total.
    mean          Float64,
    p50           Float64,
    p95           Float64,
    max           Float64,
    generalized   UInt8,
    version       UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(hour)
ORDER BY (hour, region, resource_type, instance_type, metric, version);

-- The current version of every hour: what planners and exports read.
CREATE VIEW IF NOT EXISTS analytics.fleet_usage_hourly AS
SELECT * EXCEPT version
FROM analytics.fleet_usage_hourly_versions
WHERE (hour, version) IN (SELECT hour, max(version) FROM analytics.fleet_usage_hourly_versions GROUP BY hour);

-- How much privacy cost per hour: resources whose cell was generalized or suppressed.
CREATE TABLE IF NOT EXISTS analytics.suppression_hourly
(
    hour                  DateTime('UTC'),
    metric                LowCardinality(String),
    resources_total       UInt32,
    resources_generalized UInt32,
    resources_suppressed  UInt32,
    version               UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (hour, metric);
