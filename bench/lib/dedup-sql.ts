/**
 * What deduplicating one whole hour costs: the product's view (the first-copy rule on whole
 * rows, as a whole-hour recomputation reads it) and the same rule on the key columns only.
 * Timed by the engine stage and by the steady workload's prefill. Parameter: {hour}.
 */
import { UINT64_MAX } from '../../domain/periods.js';

export const COUNTED_VIEW_SQL = `SELECT count() AS n FROM billing.counted_samples(hour = {hour:DateTime('UTC')}, through = ${UINT64_MAX})`;

export const NARROW_DEDUP_SQL = `
  SELECT count() AS n FROM (
    SELECT * FROM (
      SELECT account_id, resource_id, metric, ts, id, batch_seq, item FROM billing.samples_raw
      WHERE usage_hour = {hour:DateTime('UTC')} ORDER BY batch_seq, item LIMIT 1 BY id)
    ORDER BY batch_seq, item LIMIT 1 BY account_id, resource_id, metric, ts)`;
