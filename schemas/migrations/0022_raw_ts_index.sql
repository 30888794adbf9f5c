-- The fold looks up earlier copies of new rows by natural key; a copy has the same ts, and
-- rows of the current hour arrive roughly in ts order, so a minmax index on ts lets that
-- lookup skip almost every granule of the hour (workers/rollup-fold-sql.ts).
ALTER TABLE billing.samples_raw ADD INDEX IF NOT EXISTS ts_minmax ts TYPE minmax GRANULARITY 1;
ALTER TABLE billing.samples_raw MATERIALIZE INDEX ts_minmax;
