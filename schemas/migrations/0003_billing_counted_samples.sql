-- The deduplication rule, in one place: of all copies of a sample in an hour, the first
-- accepted one counts (acceptance order = batch_seq, item). A copy is a duplicate when it
-- repeats an earlier `id`, or the natural key (account_id, resource_id, metric, ts).
-- Ids are compared within the usage hour, the unit of recomputation.
CREATE VIEW IF NOT EXISTS billing.counted_samples AS
SELECT *
FROM
(
    SELECT *
    FROM billing.samples_raw
    WHERE usage_hour = {hour:DateTime('UTC')}
    ORDER BY batch_seq, item
    LIMIT 1 BY id
)
ORDER BY batch_seq, item
LIMIT 1 BY account_id, resource_id, metric, ts;
