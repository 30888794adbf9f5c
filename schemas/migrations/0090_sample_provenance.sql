-- Provenance of a sample (issue 17, "no silent outcomes"): a value the producer did not
-- measure over its whole window, e.g. a gauge a pull collector held across missed scrapes,
-- arrives marked (`estimated` on the wire) and keeps its mark in the raw row. '' means
-- measured: every row written before this migration, and every producer that never
-- estimates. Billing is unchanged; the mark only says where the number came from.
ALTER TABLE billing.samples_raw ADD COLUMN IF NOT EXISTS estimated LowCardinality(String) DEFAULT '';

-- Per resource-hour, the seconds of counted windows whose value was held rather than
-- measured (a part of covered_s), so coverage can tell measured time from filled time.
-- Hours aggregated before this migration have no held seconds to report: 0.
ALTER TABLE billing.usage_hourly ADD COLUMN IF NOT EXISTS held_s UInt64 DEFAULT 0;
