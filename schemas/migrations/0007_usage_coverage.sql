-- Coverage: how much of each resource's time its samples cover, so billing can hold an
-- invoice whose data is missing. Per resource-hour: seconds covered by counted windows,
-- and the first window start / last window end seen in the hour.
ALTER TABLE billing.usage_hourly
    ADD COLUMN IF NOT EXISTS covered_s UInt64 DEFAULT 0,
    ADD COLUMN IF NOT EXISTS first_start DateTime64(3, 'UTC') DEFAULT hour,
    ADD COLUMN IF NOT EXISTS last_end DateTime64(3, 'UTC') DEFAULT hour;
