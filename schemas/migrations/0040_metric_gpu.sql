-- GPU metering: a sixth metric kind, `gpu` (GPU-seconds used in the window, billed in
-- GPU-hours; schemas/metrics.ts). Every billing table whose `metric` is an Enum8 gets the
-- new value. Adding a value at the end of an Enum8 only changes metadata: no part is
-- rewritten, so this is instant on any amount of data, and allowed although `metric` is in
-- each table's sort key. Analytics stores `metric` as LowCardinality(String): nothing to do
-- there. billing.counted_samples is `SELECT *` over samples_raw and follows it.
-- schemas/migrate.ts checks after migrating that every `metric` Enum8 equals the catalogue.
ALTER TABLE billing.samples_raw
    MODIFY COLUMN metric Enum8('cpu' = 1, 'memory' = 2, 'storage' = 3, 'bandwidth_in' = 4, 'bandwidth_out' = 5, 'gpu' = 6);
ALTER TABLE billing.usage_hourly
    MODIFY COLUMN metric Enum8('cpu' = 1, 'memory' = 2, 'storage' = 3, 'bandwidth_in' = 4, 'bandwidth_out' = 5, 'gpu' = 6);
ALTER TABLE billing.adjustments_hourly
    MODIFY COLUMN metric Enum8('cpu' = 1, 'memory' = 2, 'storage' = 3, 'bandwidth_in' = 4, 'bandwidth_out' = 5, 'gpu' = 6);
