/**
 * The rules a replicated cluster needs that embedded mode can check (deploy/cluster/
 * README.md), on the real engine and a real Redis, nothing mocked:
 *  - row versions are fleet-monotonic: a rollup or closer on a host whose clock is hours
 *    behind still writes versions above every row already written, so its rows win;
 *  - no mutation has a subquery: the analytics prune deletes listed (hour, version) pairs;
 *  - an erasure mutation is never queued twice: a retry waits for the unfinished one.
 */
import { Redis } from 'ioredis';
import { beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { engineAndRedis } from './support/engine.js';
import { insertNdjson, queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { createLogger } from '../lib/log.js';
import { claimSequence, markWrittenInPipeline, nextRowVersion, readWriteReplica, recordWriteReplica } from '../domain/ledger.js';
import { BILLING_TABLES, catchUp } from '../workers/replica-barrier.js';
import { redisKeys } from '../schemas/queues.js';
import { encodeRawRow, RAW_INSERT_TARGET, RAW_ROW_FORMAT, type RawRow } from '../schemas/raw-row.js';
import { PeriodCloser } from '../workers/period-closer.js';
import { RollupScheduler } from '../workers/rollup.js';
import { pruneAnalyticsVersions } from '../workers/rollup-prune.js';
import { PRUNE_ANALYTICS_SQL } from '../workers/rollup-sql.js';
import { deleteAccountRows } from '../workers/erasure.js';

const PREFIX = `umtest-cluster-rules-${process.pid}-${Date.now().toString(36)}`;
const HOUR_MS = 3_600_000;
const monthStart = (ms: number, add = 0) => Date.UTC(new Date(ms).getUTCFullYear(), new Date(ms).getUTCMonth() + add, 1);
const P = monthStart(Date.now(), -2);
const NEXT = monthStart(P, 1);
const HOUR_S = (P + 5 * HOUR_MS) / 1000;
const log = createLogger('silent');

describe('rules for a replicated cluster, on the embedded engine', () => {
  let ch: ClickHouseClient;
  let redis: Redis;
  let keys: ReturnType<typeof redisKeys>;
  let run = 0;

  const env = engineAndRedis('cluster-rules', PREFIX);
  beforeAll(() => {
    ({ ch, redis } = env);
  });
  beforeEach(async () => {
    for (const t of ['billing.samples_raw', 'billing.usage_hourly', 'billing.ingest_stats_hourly', 'billing.adjustments_hourly', 'billing.periods', 'analytics.fleet_usage_hourly_versions', 'analytics.suppression_hourly']) {
      await ch.command({ query: `TRUNCATE TABLE ${t}` });
    }
    keys = redisKeys(`${PREFIX}:${++run}`);
  });

  const rollupAt = (clock: () => number) =>
    new RollupScheduler({ ch, redis, keys, log, k: 2, analyticsAttributes: [], intervalMs: 3_600_000, rawRetentionDays: 400, quietMs: 0, maxDelayMs: 0, clock });

  /** What ingest and the batch writer do for one batch of one sample. */
  async function writeBatch(resource: string, value: string): Promise<number> {
    const batchId = crypto.randomUUID();
    const seq = await claimSequence(redis, keys, batchId, HOUR_S);
    const row: RawRow = {
      batch_id: batchId, batch_seq: seq, item: 0, id: `${resource}-${seq}`, account_id: 'acct-clock', resource_id: resource, resource_type: 'vm',
      region: 'eu-west-1', metric: 'cpu', ts: (HOUR_S + 60 * seq) * 1000, usage_hour: HOUR_S, interval_s: 60, value, attributes: {}, accepted_at: Date.now(),
    };
    await insertNdjson(ch, RAW_INSERT_TARGET, encodeRawRow(row) + '\n', { insert_deduplication_token: batchId }, RAW_ROW_FORMAT);
    await markWrittenInPipeline(redis.pipeline(), keys, { batchId, batchSeq: seq, hours: [HOUR_S] }).exec();
    return seq;
  }
  const maxVersion = async (table: string) => BigInt((await queryRows<{ v: string }>(ch, `SELECT toString(max(version)) AS v FROM ${table}`))[0]!.v);

  it('issues versions above every earlier one, whatever the caller clock says', async () => {
    const now = Date.now();
    // First use, on empty tables: the counter is created from the clock.
    const first = await nextRowVersion(redis, keys, now, async () => 0);
    expect(first).toBe((now + 1) * 1000);
    const ahead = await nextRowVersion(redis, keys, now + 2 * HOUR_MS, async () => 0);
    expect(ahead).toBe((now + 2 * HOUR_MS + 1) * 1000);
    // A host five hours behind, then many at once: each above the one before, none repeated.
    const behind = await nextRowVersion(redis, keys, now - 5 * HOUR_MS, async () => 0);
    expect(behind).toBe(ahead + 1);
    const many = await Promise.all(Array.from({ length: 50 }, () => nextRowVersion(redis, keys, now - 5 * HOUR_MS, async () => 0)));
    expect(new Set(many).size).toBe(50);
    expect(Math.min(...many)).toBeGreaterThan(behind);
    // A counter lost with its Redis is seeded from the highest version the tables hold.
    await redis.del(keys.rowVersion);
    expect(await nextRowVersion(redis, keys, now - 5 * HOUR_MS, async () => '9000000000000000')).toBe(9_000_000_000_000_001);
  });

  it('a rollup on a host hours behind writes above rows written by hosts ahead, and its fold stands', async () => {
    const realNow = Date.now();
    // A row the wall-clock scheme wrote on a host two hours ahead, before the counter existed.
    const oldScheme = (realNow + 2 * HOUR_MS) * 1000;
    await ch.insert({
      table: 'billing.usage_hourly',
      format: 'JSONEachRow',
      values: [{ account_id: 'acct-old', hour: HOUR_S, metric: 'cpu', resource_id: 'vm-old', resource_type: 'vm', region: 'eu-west-1', base_total: '1', samples: 1, covered_s: 60, first_start: HOUR_S * 1000, last_end: HOUR_S * 1000, through_seq: 0, version: oldScheme }],
    });
    // Host A (right clock) folds the first batch…
    await writeBatch('vm-1', '10.5');
    await rollupAt(() => Date.now()).runOnce();
    const afterA = await maxVersion('billing.usage_hourly');
    expect(afterA).toBeGreaterThan(BigInt(oldScheme));
    // …host B, five hours behind, folds the second one into the same aggregate row.
    await writeBatch('vm-1', '2.25');
    await rollupAt(() => Date.now() - 5 * HOUR_MS).runOnce();
    const afterB = await maxVersion('billing.usage_hourly');
    expect(afterB).toBeGreaterThan(afterA);
    // B's row is the current one: both batches counted (with the clock's versions, A's row won).
    const rows = await queryRows<{ resource_id: string; base: string; samples: number; through_seq: string }>(
      ch,
      `SELECT resource_id, toString(base_total) AS base, samples, through_seq FROM billing.usage_hourly FINAL WHERE account_id = 'acct-clock'`,
    );
    expect(rows).toEqual([{ resource_id: 'vm-1', base: '12.75', samples: 2, through_seq: '2' }]);
    expect(await maxVersion('billing.ingest_stats_hourly')).toBe(afterB);
  });

  it('a closer on a host hours behind records the close above the closing state a host ahead wrote', async () => {
    const period = new Date(P).toISOString().slice(0, 10);
    await writeBatch('vm-1', '4');
    // 'closing', as the wall-clock scheme wrote it on a host an hour ahead.
    await ch.insert({
      table: 'billing.periods',
      format: 'JSONEachRow',
      values: [{ period, status: 'closing', close_seq: Number(await redis.get(keys.batchSeq)), closed_at: null, export_sha256: '', version: (Date.now() + HOUR_MS) * 1000 }],
    });
    await redis.incr(keys.periodsVersion);
    const behind = () => Date.now() - 5 * HOUR_MS;
    const rollup = rollupAt(behind);
    const closer = new PeriodCloser({ ch, redis, keys, log, graceMs: 0, intervalMs: 3_600_000, now: () => NEXT + HOUR_MS, clock: behind, replicaBarrier: true });
    await rollup.runOnce();
    await recordWriteReplica(redis, keys, 'ch-before-failover');
    expect(await closer.runOnce()).toEqual([]); // marks the period's hours, waits for them
    // The closer caught up on this replica before it read anything.
    expect(await readWriteReplica(redis, keys)).not.toBe('ch-before-failover');
    await rollup.runOnce();
    expect(await closer.runOnce()).toEqual([period]);
    const [state] = await queryRows<{ status: string }>(ch, 'SELECT status FROM billing.periods FINAL WHERE period = {p:Date}', { p: period });
    expect(state?.status).toBe('closed');
  });

  it('catches up before the first round on a new write replica, and only then folds', async () => {
    const events: string[] = [];
    const rollup = () =>
      new RollupScheduler({
        ch, redis, keys, log, k: 2, analyticsAttributes: [], intervalMs: 3_600_000, rawRetentionDays: 400, quietMs: 0, maxDelayMs: 0,
        replicaBarrier: true,
        onReplicaCatchUp: (c) => events.push(`catch-up ${c.replica} [${c.synced.join(',')}]`),
        onFold: (rows) => events.push(`fold ${rows}`),
      });
    const [{ h: host }] = (await queryRows<{ h: string }>(ch, 'SELECT hostName() AS h')) as [{ h: string }];
    // The first round in a fresh ledger catches up (no table is replicated here: nothing to
    // sync) before anything else; with nothing written yet there is nothing to fold.
    await rollup().runOnce();
    expect(events).toEqual([`catch-up ${host} []`]);
    expect(await readWriteReplica(redis, keys)).toBe(host);
    // Same replica: no barrier again.
    await writeBatch('vm-r', '1.5');
    await writeBatch('vm-r', '2');
    await rollup().runOnce();
    expect(events.slice(1)).toEqual(['fold 2']);
    // Another process caught up on another replica since (a failover and back): the barrier runs again first.
    await recordWriteReplica(redis, keys, 'ch-2');
    await writeBatch('vm-r', '3');
    await rollup().runOnce();
    expect(events.slice(2)).toEqual([`catch-up ${host} []`, 'fold 1']);
    expect(await readWriteReplica(redis, keys)).toBe(host);
    const [row] = await queryRows<{ base: string }>(ch, `SELECT toString(base_total) AS base FROM billing.usage_hourly FINAL WHERE resource_id = 'vm-r'`);
    expect(row?.base).toBe('6.5');
  });

  it('syncs exactly the replicated billing tables when it catches up', async () => {
    // None is replicated on the embedded engine: the statement list is what a cluster would run.
    const replicated = await queryRows<{ name: string }>(ch, "SELECT name FROM system.tables WHERE database = 'billing' AND engine LIKE 'Replicated%'");
    expect(replicated).toEqual([]);
    await recordWriteReplica(redis, keys, 'ch-old');
    const c = await catchUp(ch, redis, keys);
    expect(c).toMatchObject({ changed: true, synced: [] });
    expect(await catchUp(ch, redis, keys)).toMatchObject({ changed: false, synced: [] });
    for (const t of BILLING_TABLES) expect(await queryRows(ch, `EXISTS TABLE billing.${t}`)).toEqual([{ result: 1 }]);
  });

  it('prunes old analytics versions by listed values, in chunks, keeping each hour newest', async () => {
    expect(PRUNE_ANALYTICS_SQL).not.toMatch(/\bSELECT\b/i); // a replicated table refuses a subquery mutation
    const hours = [HOUR_S, HOUR_S + 3600, HOUR_S + 7200];
    const values = hours.flatMap((hour, i) => Array.from({ length: 2 + i * 2 }, (_, v) => ({ hour, region: 'eu-west-1', metric: 'cpu', accounts: 3, version: 1_000 + v })));
    await ch.insert({ table: 'analytics.fleet_usage_hourly_versions', format: 'JSONEachRow', values });
    // 1 + 3 + 5 stale pairs, deleted two pairs per statement.
    expect(await pruneAnalyticsVersions(ch, { chunk: 2 })).toBe(9);
    const left = await queryRows<{ hour: string; version: string }>(ch, 'SELECT toUnixTimestamp(hour) AS hour, version FROM analytics.fleet_usage_hourly_versions ORDER BY hour');
    expect(left.map((r) => [Number(r.hour), Number(r.version)])).toEqual([
      [hours[0], 1_001],
      [hours[1], 1_003],
      [hours[2], 1_005],
    ]);
    expect(await pruneAnalyticsVersions(ch)).toBe(0);
  });

  it('never queues a second erasure mutation while one for the account is unfinished', async () => {
    await ch.command({ query: 'CREATE DATABASE IF NOT EXISTS erasure_probe' });
    await ch.command({ query: 'CREATE TABLE IF NOT EXISTS erasure_probe.rows (account_id String, n UInt64) ENGINE = MergeTree ORDER BY n' });
    const account = "acct-'quoted\\x";
    await ch.command({ query: 'INSERT INTO erasure_probe.rows SELECT if(number % 2 = 0, {a:String}, \'acct-keep\'), number FROM numbers(1000)', query_params: { a: account } });
    const mutations = async () => queryRows<{ mutation_id: string; is_done: number; command: string }>(ch, "SELECT mutation_id, is_done, command FROM system.mutations WHERE database = 'erasure_probe' AND table = 'rows'");
    const count = async (a: string) => Number((await queryRows<{ n: string }>(ch, 'SELECT count() AS n FROM erasure_probe.rows WHERE account_id = {a:String}', { a }))[0]!.n);

    // An erasure mutation of the account that cannot finish (as one still rewriting parts,
    // or failing), issued by an earlier attempt.
    const hex = Buffer.from(account, 'utf8').toString('hex').toUpperCase();
    await ch.command({ query: `ALTER TABLE erasure_probe.rows DELETE WHERE account_id = unhex('${hex}') AND throwIf(n >= 0, 'stuck')`, clickhouse_settings: { mutations_sync: '0' } });
    const deps = { ch, log, mutationWaitMs: 300 };
    // Two retries: each waits for it (bounded), neither queues another.
    await expect(deleteAccountRows(deps, 'erasure_probe.rows', account)).rejects.toThrow(/erasure mutation .* on erasure_probe\.rows/);
    await expect(deleteAccountRows(deps, 'erasure_probe.rows', account)).rejects.toThrow(/the retry waits for it/);
    expect(await mutations()).toHaveLength(1);

    // Once it is gone (an operator killed it), the next attempt issues one and waits for it.
    await ch.command({ query: "KILL MUTATION WHERE database = 'erasure_probe' AND table = 'rows' SYNC" });
    await deleteAccountRows({ ch, log }, 'erasure_probe.rows', account);
    expect(await count(account)).toBe(0);
    expect(await count('acct-keep')).toBe(500);
    const after = await mutations();
    expect(after.filter((m) => m.is_done === 0)).toEqual([]);
    expect(after.some((m) => m.command.includes(`account_id = unhex('${hex}')`))).toBe(true);
    // Nothing left: no mutation at all.
    await deleteAccountRows({ ch, log }, 'erasure_probe.rows', account);
    expect(await mutations()).toHaveLength(after.length);
  });
});
