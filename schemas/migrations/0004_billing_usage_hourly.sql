-- Exact per-account usage per hour, recomputed whole from counted_samples whenever the
-- hour gets new data; the newest `version` replaces the old row.
CREATE TABLE IF NOT EXISTS billing.usage_hourly
(
    account_id    String,
    hour          DateTime('UTC'),
    metric        Enum8('cpu' = 1, 'memory' = 2, 'storage' = 3, 'bandwidth_in' = 4, 'bandwidth_out' = 5),
    resource_id   String,
    -- Attributes of the resource (from its first counted sample in the hour), not keys:
    -- the key set of an hour only grows, so replacing by key is exact.
    resource_type Enum8('vm' = 1, 'volume' = 2, 'database' = 3, 'bucket' = 4, 'load_balancer' = 5, 'network' = 6),
    region        LowCardinality(String),
    -- vCPU-seconds, byte-seconds (memory, storage) or bytes (bandwidth).
    base_total    Decimal(38, 6),
    samples       UInt32,
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(hour)
-- Billing reads filter by account and time range first; the key equals the rollup's GROUP BY.
ORDER BY (account_id, hour, metric, resource_id);

-- What the rollup saw per hour: received copies, counted samples, conflicting duplicates.
CREATE TABLE IF NOT EXISTS billing.ingest_stats_hourly
(
    hour      DateTime('UTC'),
    received  UInt64,
    counted   UInt64,
    conflicts UInt64,
    version   UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY hour;
