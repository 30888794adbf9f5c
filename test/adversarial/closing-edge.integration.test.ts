/**
 * The closing-recomputation edge, forced step by step against a real engine and Redis:
 *
 *   1. the closer starts closing period P and reads the acceptance counter as close_seq;
 *   2. before it records that state, a batch numbered after close_seq is written for an
 *      hour of P, and a fold round, still seeing P open, folds it in. The batch carries a
 *      resource the hour had no row for, so the fold creates a new aggregate row;
 *   3. the closer records P as closing and marks its hours dirty;
 *   4. the rollup recomputes those hours with the split: the late batch is an adjustment
 *      in the next period, and is not part of P's on-time usage;
 *   5. the closer closes P.
 *
 * The recomputation must leave no aggregate row it did not produce itself: otherwise the
 * new resource's row survives in P (replacing by key cannot replace a key the
 * recomputation no longer produces) and the late usage is billed twice, in P's closed
 * totals and again as an adjustment.
 *
 * A second interleaving: the closer writes P's closing state and stops (a crash, a Redis
 * error) before bumping the version the rollup's state cache watches. Its next round marks
 * P's hours dirty; the rollup must then recompute them with the split, not with its
 * cached view of P as open.
 */
import { Redis } from 'ioredis';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { engineAndRedis } from '../support/engine.js';
import { insertNdjson, queryRows, type ClickHouseClient } from '../../lib/clickhouse.js';
import { markWrittenInPipeline } from '../../domain/ledger.js';
import { claimSequence } from '../../domain/ledger.js';
import { createLogger } from '../../lib/log.js';
import { exportDigest, periodRecords, type ExportRecord } from '../../domain/period-export.js';
import { redisKeys } from '../../schemas/queues.js';
import { encodeRawRow, RAW_INSERT_TARGET, RAW_ROW_FORMAT, type RawRow } from '../../schemas/raw-row.js';
import { PeriodCloser } from '../../workers/period-closer.js';
import { RollupScheduler } from '../../workers/rollup.js';

// Own keys, removed afterwards (not via support/pipeline.ts: no HTTP side is needed here).
const PREFIX = `umtest-closing-edge-${process.pid}-${Date.now().toString(36)}`;
const HOUR_MS = 3_600_000;
const monthStart = (ms: number, add = 0) => Date.UTC(new Date(ms).getUTCFullYear(), new Date(ms).getUTCMonth() + add, 1);
// P: two months back, well inside the raw retention configured below.
const P = monthStart(Date.now(), -2);
const NEXT = monthStart(P, 1);
const HOUR_S = (P + 5 * HOUR_MS) / 1000;
const ACCOUNT = 'acct-edge';

interface Sent {
  seq: number;
  resource: string;
  value: string;
}

describe('closing a period while a batch for its hours is folded', () => {
  let ch: ClickHouseClient;
  let redis: Redis;
  let keys: ReturnType<typeof redisKeys>;
  let rollup: RollupScheduler;
  let closer: PeriodCloser;
  let sent: Sent[] = [];
  let run = 0;

  const env = engineAndRedis('closing-edge', PREFIX);
  beforeAll(() => {
    ({ ch, redis } = env);
  });

  // One embedded engine per process: each scenario empties it and takes fresh Redis keys.
  beforeEach(async () => {
    for (const t of ['billing.samples_raw', 'billing.usage_hourly', 'billing.ingest_stats_hourly', 'billing.adjustments_hourly', 'billing.periods']) {
      await ch.command({ query: `TRUNCATE TABLE ${t}` });
    }
    keys = redisKeys(`${PREFIX}:${++run}`);
    sent = [];
    const log = createLogger('silent');
    // Neither is started: the test runs each round itself, in the order it wants.
    rollup = new RollupScheduler({ ch, redis, keys, log, k: 2, analyticsAttributes: [], intervalMs: 3_600_000, rawRetentionDays: 400, quietMs: 0, maxDelayMs: 0 });
    // "Now" is just after P's end, with no grace: P is due, the next month is not.
    closer = new PeriodCloser({ ch, redis, keys, log, graceMs: 0, intervalMs: 3_600_000, now: () => NEXT + HOUR_MS });
  });

  /** What ingest and the batch writer do for one batch: claim a sequence, insert, mark written. */
  async function writeBatch(resource: string, value: string): Promise<number> {
    const batchId = crypto.randomUUID();
    const seq = await claimSequence(redis, keys, batchId, HOUR_S);
    const row: RawRow = {
      batch_id: batchId, batch_seq: seq, item: 0, id: `${resource}-${seq}`, account_id: ACCOUNT, resource_id: resource, resource_type: 'vm',
      region: 'eu-west-1', metric: 'cpu', ts: (HOUR_S + 600 * seq) * 1000, usage_hour: HOUR_S, interval_s: 600, value, attributes: {}, accepted_at: Date.now(),
    };
    await insertNdjson(ch, RAW_INSERT_TARGET, encodeRawRow(row) + '\n', { insert_deduplication_token: batchId }, RAW_ROW_FORMAT);
    await markWrittenInPipeline(redis.pipeline(), keys, { batchId, batchSeq: seq, hours: [HOUR_S] }).exec();
    sent.push({ seq, resource, value });
    return seq;
  }

  /** What PeriodCloser's first step writes: P closing, with the close_seq it read. */
  const writeClosingState = (closeSeq: number) =>
    ch.insert({
      table: 'billing.periods',
      format: 'JSONEachRow',
      values: [{ period: new Date(P).toISOString().slice(0, 10), status: 'closing', close_seq: closeSeq, closed_at: null, export_sha256: '', version: Date.now() * 1000 }],
    });

  const records = async (period: number): Promise<ExportRecord[]> => {
    const out: ExportRecord[] = [];
    for await (const r of periodRecords(ch, new Date(period).toISOString().slice(0, 7))) out.push(r);
    return out;
  };
  /** Exact decimal sum of values written with six decimals at most. */
  const sum = (xs: Sent[]) => {
    const micros = xs.reduce((n, s) => n + BigInt(Math.round(Number(s.value) * 1e6)), 0n);
    return `${micros / 1_000_000n}${micros % 1_000_000n ? `.${String(micros % 1_000_000n).padStart(6, '0').replace(/0+$/, '')}` : ''}`;
  };

  it('bills the late resource once, as an adjustment, and not in the closed period', async () => {
    // An on-time resource, folded while P is open.
    await writeBatch('vm-edge-1', '10.5');
    await rollup.runOnce();

    // 1. The closer reads close_seq…
    const closeSeq = Number(await redis.get(keys.batchSeq));
    // 2. …a later batch brings a new resource for P's hour, and a fold round that still
    // sees P open folds it in: a new aggregate row.
    const lateSeq = await writeBatch('vm-edge-2', '7.25');
    expect(lateSeq).toBeGreaterThan(closeSeq);
    await rollup.runOnce();
    const folded = await queryRows<{ resource_id: string }>(ch, `SELECT resource_id FROM billing.usage_hourly FINAL WHERE hour = {h:DateTime('UTC')} ORDER BY resource_id`, { h: HOUR_S });
    expect(folded.map((r) => r.resource_id)).toEqual(['vm-edge-1', 'vm-edge-2']);

    // 3. …then records P as closing with the close_seq it read (what PeriodCloser's first
    // step writes), and bumps the version readers' caches watch.
    await writeClosingState(closeSeq);
    await redis.incr(keys.periodsVersion);
    // The closer's own round finds P closing, marks its hours dirty and waits for them.
    expect(await closer.runOnce()).toEqual([]);
    expect(await redis.hexists(keys.dirtyHours, String(HOUR_S))).toBe(1);

    // 4. The closing recomputation, 5. the close.
    await rollup.runOnce();
    expect(await redis.hexists(keys.dirtyHours, String(HOUR_S))).toBe(0);
    expect(await closer.runOnce()).toEqual([new Date(P).toISOString().slice(0, 10)]);

    await expectSplitAt(closeSeq);
  });

  /**
   * Independent expectation: batches numbered up to close_seq are P's usage; later ones
   * are adjustments billed in the next open period, tied to P.
   */
  async function expectSplitAt(closeSeq: number): Promise<void> {
    const onTime = sent.filter((s) => s.seq <= closeSeq);
    const late = sent.filter((s) => s.seq > closeSeq);
    expect(onTime.length).toBe(1);
    expect(late.length).toBe(1);

    const closed = await records(P);
    expect(closed.map((r) => ({ kind: r.kind, account: r.account_id, metric: r.metric, base: r.base_total }))).toEqual([
      { kind: 'usage', account: ACCOUNT, metric: 'cpu', base: sum(onTime) },
    ]);
    const next = await records(NEXT);
    expect(next.map((r) => ({ kind: r.kind, original: r.original_period, base: r.base_total }))).toEqual([
      { kind: 'adjustment', original: new Date(P).toISOString().slice(0, 7), base: sum(late) },
    ]);
    // No aggregate row of P holds the late resource.
    const rows = await queryRows<{ resource_id: string }>(ch, `SELECT resource_id FROM billing.usage_hourly FINAL WHERE hour = {h:DateTime('UTC')} ORDER BY resource_id`, { h: HOUR_S });
    expect(rows.map((r) => r.resource_id)).toEqual(onTime.map((s) => s.resource));
    // Closed is closed: the recorded fingerprint is the export's, and more rounds change nothing.
    const digest = await exportDigest(ch, new Date(P).toISOString().slice(0, 7));
    const [state] = await queryRows<{ export_sha256: string }>(ch, `SELECT export_sha256 FROM billing.periods FINAL WHERE period = {p:Date}`, { p: new Date(P).toISOString().slice(0, 10) });
    expect(state?.export_sha256).toBe(digest);
    await rollup.runOnce();
    await closer.runOnce();
    expect(await exportDigest(ch, new Date(P).toISOString().slice(0, 7))).toBe(digest);
  }

  it('forgets the state a closer wrote but did not announce, once the closer marks the hours', async () => {
    // An on-time resource, folded while P is open; the rollup caches P's state as open.
    await writeBatch('vm-edge-1', '10.5');
    await rollup.runOnce();
    // The closer writes P's closing state, and stops before bumping the version.
    const closeSeq = Number(await redis.get(keys.batchSeq));
    await writeClosingState(closeSeq);
    // A late batch for P's hour, with a new resource.
    await writeBatch('vm-edge-2', '7.25');
    // The closer's next round finds the state, marks P's hours dirty and waits for them.
    expect(await closer.runOnce()).toEqual([]);
    // The rollup recomputes them: with the split, though its cache was fresh a moment ago.
    await rollup.runOnce();
    expect(await closer.runOnce()).toEqual([new Date(P).toISOString().slice(0, 10)]);
    await expectSplitAt(closeSeq);
  });
});
