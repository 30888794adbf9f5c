-- analytics.suppression_hourly is versioned (ReplacingMergeTree): read without FINAL, an
-- hour recomputed twice shows twice. This view is the report as it stands: one row per
-- hour and metric, the newest version, without the version column.
CREATE OR REPLACE VIEW analytics.suppression_hourly_latest AS
SELECT * EXCEPT version
FROM analytics.suppression_hourly FINAL;
