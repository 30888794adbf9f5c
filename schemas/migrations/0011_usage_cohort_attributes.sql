-- The resource's cohort attributes (raw values, from its first counted sample in the hour),
-- so that analytics are computed from these per-resource hourly rows instead of re-reading
-- every raw sample of the hour. They stay in billing: analytics only ever receives the
-- allow-listed, label-checked values (workers/rollup-sql.ts).
ALTER TABLE billing.usage_hourly
    ADD COLUMN IF NOT EXISTS instance_type String DEFAULT '',
    ADD COLUMN IF NOT EXISTS zone String DEFAULT '';
