-- Every accepted sample as it arrived, duplicates included: which copy counts is decided
-- by billing.counted_samples, so a job written twice can never bill twice.
CREATE TABLE IF NOT EXISTS billing.samples_raw
(
    usage_hour    DateTime('UTC'),
    account_id    String,
    resource_id   String,
    metric        Enum8('cpu' = 1, 'memory' = 2, 'storage' = 3, 'bandwidth_in' = 4, 'bandwidth_out' = 5),
    ts            DateTime64(3, 'UTC'),
    id            String,
    resource_type Enum8('vm' = 1, 'volume' = 2, 'database' = 3, 'bucket' = 4, 'load_balancer' = 5, 'network' = 6),
    region        LowCardinality(String),
    interval_s    UInt16,
    value         Decimal(38, 6),
    attributes    Map(LowCardinality(String), String),
    batch_id      UUID,
    batch_seq     UInt64,
    item          UInt32,
    accepted_at   DateTime64(3, 'UTC')
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(usage_hour)
-- Rollups read one hour at a time, and within it duplicates of a natural key sit together.
ORDER BY (usage_hour, account_id, resource_id, metric, ts)
-- Re-inserting a batch (a job retried after a crash) is dropped by its deduplication token
-- as long as it is among the last 100k inserts; older repeats are harmless, only bulkier.
SETTINGS non_replicated_deduplication_window = 100000;
