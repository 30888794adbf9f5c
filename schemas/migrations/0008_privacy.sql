-- Account lifecycle, for retention: usage is kept while the account is active and for 12
-- months (configurable) after it is terminated, then erased.
CREATE TABLE IF NOT EXISTS billing.accounts
(
    account_id    String,
    status        Enum8('active' = 1, 'terminated' = 2),
    terminated_at Nullable(DateTime64(3, 'UTC')),
    delete_after  Nullable(DateTime64(3, 'UTC')),
    version       UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY account_id;

-- The audit trail: every call to the billing, privacy and analytics APIs. Its own
-- database so that its permissions and its 24-month retention stand apart. Append-only:
-- the product never updates or deletes a row; only the TTL (applied at start-up from
-- AUDIT_RETENTION_MONTHS) removes them.
CREATE DATABASE IF NOT EXISTS audit;

CREATE TABLE IF NOT EXISTS audit.api_calls
(
    ts          DateTime64(3, 'UTC'),
    -- The key's public id, never the key; '-' when no valid key was presented.
    key_id      String,
    role        LowCardinality(String),
    method      LowCardinality(String),
    route       LowCardinality(String),
    path        String,
    status      UInt16,
    duration_ms UInt32,
    request_id  String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (ts, key_id);
