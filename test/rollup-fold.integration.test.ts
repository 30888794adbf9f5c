/**
 * Folding is exact: for streams over two hours dense with duplicates (by id and by natural
 * key), conflicting payloads, ids reused for other samples and across hours, batches
 * written out of acceptance order and folds repeated as after a crash, the aggregates
 * built by folding equal the whole-hour recomputation from billing.counted_samples,
 * column by column.
 */
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse, insertNdjson, queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { migrate } from '../lib/migrate.js';
import { encodeRawRow, RAW_INSERT_TARGET, RAW_ROW_FORMAT, type RawRow } from '../schemas/raw-row.js';
import { earlierPositions, foldHours } from '../workers/rollup-fold.js';
import { FOLD_USAGE_SQL } from '../workers/rollup-fold-sql.js';
import { rollupHour } from '../workers/rollup.js';
import { mulberry32 } from '../sim/random.js';
import { scratchDirs } from './support/temp.js';

const HOUR_S = 1_795_000_000 - (1_795_000_000 % 3600);
const HOURS = [HOUR_S, HOUR_S + 3600];
const METRICS = ['cpu', 'memory', 'bandwidth_in'] as const;

/** Batches over a tiny key space, so copies by id and by key collide often. */
function makeBatches(seed: number, batches: number, perBatch: number): RawRow[][] {
  const r = mulberry32(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(r() * xs.length)]!;
  const out: RawRow[][] = [];
  for (let b = 1; b <= batches; b++) {
    const rows: RawRow[] = [];
    for (let item = 0; item < perBatch; item++) {
      const account = pick(['a1', 'a2', 'a3']);
      const resource = `${account}-${pick(['vm1', 'vm2'])}`;
      const minute = Math.floor(r() * 6);
      const hour = pick(HOURS);
      rows.push({
        batch_id: `00000000-0000-4000-8000-${String(seed).padStart(4, '0')}${String(b).padStart(8, '0')}`,
        batch_seq: b,
        item,
        // A fifth reuse an earlier id: a retry, or an id reused for another sample.
        id: r() < 0.2 ? `id-${Math.floor(r() * 20)}` : `id-${b}-${item}`,
        account_id: account,
        resource_id: resource,
        resource_type: 'vm',
        region: pick(['eu-west-1', 'us-east-1']),
        metric: pick(METRICS),
        ts: (hour + 60 * (minute + 1)) * 1000,
        usage_hour: hour,
        interval_s: pick([60, 30]),
        // Copies disagree on the value now and then: conflicts, first copy stands.
        value: pick(['1.5', '2', '1024', '0.000001']),
        attributes: { instance_type: pick(['m5.large', 'c5.xlarge']), zone: pick(['eu-west-1a', 'eu-west-1b']) },
        accepted_at: (HOUR_S + 7200) * 1000 + b,
        // Some held by a collector (0090): held seconds must fold like covered seconds.
        // Not drawn from the stream, so the rest of the data stays what it was.
        estimated: item % 5 === 0 ? 'held' : '',
      });
    }
    out.push(rows);
  }
  return out;
}

describe('folding new batches into the aggregates', () => {
  let ch: ClickHouseClient;
  const scratch = scratchDirs();

  beforeAll(async () => {
    ch = createClickHouse({ CLICKHOUSE_URL: undefined, CLICKHOUSE_USER: 'default', CLICKHOUSE_PASSWORD: '', DATA_DIR: path.join(scratch('fold-'), 'ch') });
    await migrate(ch);
  });
  afterAll(async () => {
    await ch?.close();
  });

  const reset = async () => {
    for (const t of ['billing.samples_raw', 'billing.usage_hourly', 'billing.ingest_stats_hourly']) await ch.command({ query: `TRUNCATE TABLE ${t}` });
  };
  const insert = (rows: RawRow[]) =>
    insertNdjson(ch, RAW_INSERT_TARGET, rows.map(encodeRawRow).join('\n') + '\n', { insert_deduplication_token: crypto.randomUUID() }, RAW_ROW_FORMAT);
  const snapshot = async () => ({
    usage: await queryRows(
      ch,
      `SELECT account_id, metric, resource_id, resource_type, region, instance_type, zone, toString(base_total) AS base, samples, covered_s, held_s,
              toString(first_start) AS first_start, toString(last_end) AS last_end
       FROM billing.usage_hourly FINAL ORDER BY hour, account_id, metric, resource_id`,
    ),
    stats: await queryRows(ch, `SELECT hour, received, counted, conflicts FROM billing.ingest_stats_hourly FINAL ORDER BY hour`),
  });
  let version = 1;
  const recomputeWhole = async (through: number) => {
    for (const hour of HOURS) await rollupHour(ch, hour, version++, { k: 2, analyticsAttributes: [], periods: [] }, through);
  };
  const fold = (from: number, through: number) => foldHours(ch, { hours: HOURS, from, through }, version++);

  for (const seed of [1, 2, 3]) {
    it(`equals the whole-hour recomputation (seed ${seed})`, async () => {
      await reset();
      const batches = makeBatches(seed, 24, 40);
      const r = mulberry32(seed * 7919);
      // Write batches in a shuffled order; fold up to the highest sequence with every
      // batch below it written, as the rollup does with its watermark.
      const order = batches.map((_, i) => i).sort(() => r() - 0.5);
      const written = new Set<number>();
      let folded = 0;
      for (const i of order) {
        await insert(batches[i]!);
        // A job redelivered after a crash writes its rows a second time.
        if (r() < 0.15) await insert(batches[i]!);
        written.add(i + 1);
        let watermark = folded;
        while (written.has(watermark + 1)) watermark++;
        if (watermark > folded && r() < 0.6) {
          // A round killed after writing usage but before stats: the next fold repeats it.
          if (r() < 0.2) {
            const range = { hours: HOURS, from: folded, through: watermark };
            const earlier = await earlierPositions(ch, range);
            await ch.command({ query: FOLD_USAGE_SQL, query_params: { ...range, earlier, version: version++ } });
          }
          await fold(folded, watermark);
          // Folding the same range again adds nothing.
          if (r() < 0.2) await fold(folded, watermark);
          // A round killed after writing both tables but before recording how far it got:
          // the next round folds from the old mark again, over a longer range.
          if (r() >= 0.25) folded = watermark;
        }
      }
      await fold(folded, batches.length);
      const byFolding = await snapshot();

      await recomputeWhole(batches.length);
      const whole = await snapshot();
      expect(byFolding).toEqual(whole);
      // The stream really had what the fold must get right.
      const stats = whole.stats as Array<{ received: string; counted: string; conflicts: string }>;
      expect(stats).toHaveLength(2);
      const sum = (k: 'received' | 'counted' | 'conflicts') => stats.reduce((n, s) => n + Number(s[k]), 0);
      expect(sum('received')).toBe(24 * 40);
      expect(sum('counted')).toBeLessThan(24 * 40 * 0.8);
      expect(sum('conflicts')).toBeGreaterThan(10);
      expect(whole.usage.length).toBeGreaterThan(20);
      const held = (whole.usage as Array<{ held_s: string; covered_s: string }>).filter((u) => Number(u.held_s) > 0);
      expect(held.length).toBeGreaterThan(0);
      for (const u of held) expect(Number(u.held_s)).toBeLessThanOrEqual(Number(u.covered_s));
    });
  }

  it('folds on top of a whole-hour recomputation of a prefix', async () => {
    await reset();
    const batches = makeBatches(9, 12, 40);
    for (const b of batches) await insert(b);
    await recomputeWhole(5);
    await fold(5, 12);
    const folded = await snapshot();
    await recomputeWhole(12);
    expect(folded).toEqual(await snapshot());
  });
});
