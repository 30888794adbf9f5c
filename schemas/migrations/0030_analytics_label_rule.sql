-- Analytics label values from shared values only (workers/rollup-sql.ts): a region, zone
-- or instance type is published as written only if it is on the allow-list or at least k
-- accounts share it in its hour, and never if it equals an account or resource id;
-- otherwise it becomes '*'. The suppression report counts what that generalized, and
-- records the k the hour was published under, so the leak scanner can check a published
-- label against the billing data of its hour.
ALTER TABLE analytics.suppression_hourly
    ADD COLUMN IF NOT EXISTS resources_label_generalized UInt32 DEFAULT 0 AFTER resources_zone_generalized,
    ADD COLUMN IF NOT EXISTS label_values_generalized UInt32 DEFAULT 0 AFTER resources_label_generalized,
    ADD COLUMN IF NOT EXISTS k UInt32 DEFAULT 0;

-- "Is this label value a resource id?" asks usage_hourly by resource_id, which is not a
-- prefix of its sort key: a bloom filter lets that lookup skip nearly every granule.
-- (Account ids are the sort key's first column already.) Built for existing parts in the
-- background; until then a lookup only reads more.
ALTER TABLE billing.usage_hourly ADD INDEX IF NOT EXISTS resource_bloom resource_id TYPE bloom_filter(0.01) GRANULARITY 4;
ALTER TABLE billing.usage_hourly MATERIALIZE INDEX resource_bloom;
