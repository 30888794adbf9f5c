/**
 * Fills the current hour of a fresh data directory with `--minutes` minutes of samples at
 * `--rate` samples/s before the product starts on it, so the latency stage's `steady`
 * workload sees the hour as production would at that rate some minutes in. Straight
 * INSERT … SELECT into billing.samples_raw (lib/history-sql.ts), accounts named
 * `prefill-…`. Times the deduplicating view (billing.counted_samples) over that hour, with
 * its peak memory, beside the same first-copy rule computed on the key columns only (what
 * a whole-hour recomputation would cost). Then aggregates the hour with the product's own
 * rollupHour, as the product would have by then, and reports the last acceptance sequence
 * used, so the product's batches continue after it and its fold starts there.
 *
 *   node --import tsx bench/stages/prefill.ts --data-dir DIR --rate R --minutes M --hour-start-ms MS --out FILE
 */
import { createClickHouse, queryRows } from '../../lib/clickhouse.js';
import { loadConfig } from '../../schemas/config.js';
import { migrate } from '../../lib/migrate.js';
import { stageArgs, writeResult } from '../lib/child.js';
import { insertHistory } from '../lib/history-sql.js';
import { memStatus, resetPeakRss } from '../lib/proc.js';
import { rollupHour } from '../../workers/rollup.js';
import { COUNTED_VIEW_SQL, NARROW_DEDUP_SQL } from '../lib/dedup-sql.js';

const a = stageArgs();
const rate = Number(a.rate);
const minutes = Number(a.minutes);
const seriesPerAccount = 10;
const accounts = Math.max(1, Math.ceil(rate / seriesPerAccount));
const config = loadConfig({}, { DATA_DIR: a['data-dir'] });
const ch = createClickHouse(config);
await migrate(ch);
const t = performance.now();
const rows = await insertHistory(ch, {
  accountPrefix: 'prefill-', a0: 0, accounts, seriesPerAccount, stepS: 1,
  startMs: Number(a['hour-start-ms']), steps: Math.round(minutes * 60), seqBase: 0,
});
const seconds = (performance.now() - t) / 1000;

// What deduplicating this hour costs, before the product's rollup has to: the view every
// rollup statement reads, and the same first-copy rule on the key columns only.
const hour = Number(a['hour-start-ms']) / 1000;
const measure = async (query: string) => {
  resetPeakRss();
  const base = memStatus(process.pid).vmRSSkB / 1024;
  const s = performance.now();
  await queryRows(ch, query, { hour });
  return { ms: performance.now() - s, peakExtraMB: memStatus(process.pid).vmHWMkB / 1024 - base };
};
const countedSamplesView = await measure(COUNTED_VIEW_SQL);
const narrowDedup = await measure(NARROW_DEDUP_SQL);
const [{ maxSeq }] = (await queryRows<{ maxSeq: string }>(ch, 'SELECT max(batch_seq) AS maxSeq FROM billing.samples_raw')) as [{ maxSeq: string }];
const aggregated = performance.now();
await rollupHour(ch, hour, Date.now() * 1000, { k: config.K_ANONYMITY, analyticsAttributes: config.ANALYTICS_ATTRIBUTES, periods: [] }, maxSeq);
const aggregateSeconds = (performance.now() - aggregated) / 1000;
await ch.close();
writeResult(a.out, { rows, seconds, countedSamplesView, narrowDedup, maxSeq: Number(maxSeq), aggregateSeconds });
