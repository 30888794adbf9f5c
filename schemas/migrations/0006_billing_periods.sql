-- Billing periods (UTC months) and their close. A row is written when a period starts
-- closing and again when it is closed; the newest version is its state. Batches accepted
-- with a sequence number up to close_seq are on time; any later sample for the period is
-- billed as an adjustment in a later period, so a closed period's totals never change.
CREATE TABLE IF NOT EXISTS billing.periods
(
    period        Date,
    status        Enum8('closing' = 1, 'closed' = 2),
    close_seq     UInt64,
    closed_at     Nullable(DateTime64(3, 'UTC')),
    -- SHA-256 of the period's export (NDJSON), fixed at close: byte-identical re-exports.
    export_sha256 String,
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY period;

-- Late samples for periods already closing or closed, billed in a later period as dated
-- adjustments. Each rollup of an hour writes all of that hour's adjustments as a new
-- version; readers take the newest version per hour (see queries/adjustments.ts).
CREATE TABLE IF NOT EXISTS billing.adjustments_hourly
(
    account_id    String,
    billed_period Date,
    hour          DateTime('UTC'),
    metric        Enum8('cpu' = 1, 'memory' = 2, 'storage' = 3, 'bandwidth_in' = 4, 'bandwidth_out' = 5),
    resource_id   String,
    region        LowCardinality(String),
    accepted_date Date,
    base_total    Decimal(38, 6),
    samples       UInt32,
    version       UInt64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(billed_period)
-- Bills read one account's adjustments for one billed period.
ORDER BY (account_id, billed_period, hour, metric, resource_id, accepted_date, version);
