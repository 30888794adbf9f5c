/**
 * The delivery ledger: every Redis key and script of the exactly-once protocol, and the one
 * definition of "complete". Nothing else reads or writes these keys; ingest, the batch
 * writer, the rollup, the period closer, erasure and the reconciler call the functions here.
 * (Key names are in schemas/queues.ts `redisKeys`, with every other key of the product.)
 *
 * | key | type | written by | read by | what must hold |
 * |---|---|---|---|---|
 * | batchSeq | counter | ingest (`claimSequence`) | period closer (`readCloseSequence`), fold watermark | every batch takes its number and its in-flight marks in one step, so a close that reads N sees every batch numbered ≤ N in flight or written |
 * | inflight | ZSET batch → earliest usage hour | ingest (claim), writer/erasure/reconciler (release, `markWritten`) | `outstanding` | a batch is here from its number until its rows are in ClickHouse (or quarantined), or its job is gone for good |
 * | inflightSeq | ZSET batch → sequence | as inflight, in the same steps | fold watermark, `outstanding` | the same members as inflight |
 * | parkedSeq | ZSET batch → sequence | writer on a last failed attempt (`park`) | fold watermark | a dead letter: the watermark may pass it; its rows, when replayed, go to whole recomputation |
 * | foldWatermark | sequence | rollup (`advanceFoldWatermark`) | `markWritten` | every batch numbered ≤ W is written, parked or was never acknowledged; never decreases |
 * | foldedThrough | sequence | rollup (`finishFoldRound`) | rollup | every aggregate counts the rows of batches ≤ it; absent = no record, recompute whole |
 * | pendingHours | ZSET hour → highest sequence written into it | `markWritten` | rollup, `outstanding` | an hour with written rows not folded yet; removed once the fold passes its score |
 * | dirtyHours | HASH hour → generation | `markWritten` (late batch), rollup (fold without record), period closer (closing) | rollup, `outstanding` | the hour is recomputed whole; a mark is cleared only if its generation did not change meanwhile |
 * | analyticsHours | HASH hour → generation | rollup (after a fold) | rollup, `isIdle` | the hour's k-anonymous analytics are recomputed; same clearing rule |
 * | periodsVersion | counter | period closer (`bumpPeriodsVersion`) | period-state caches | bumped after every change of a period's state, so no reader keeps an old state |
 * | rowVersion | counter | rollup and period closer (`nextRowVersion`, under their locks), seeded from ClickHouse when absent (`seedRowVersion`) | — | every ReplacingMergeTree version written is above every version written before it, whatever the writer's clock: never below the wall-clock scheme (ms × 1000) it replaced, nor below the highest version already in the tables |
 * | rollupLock, periodCloseLock | lock | lib/locks.ts | — | one rollup round and one close round at a time, fleet-wide |
 * | migrationLock | lock | lib/migrate.ts `migrateUnderLock` | — | one process applies ClickHouse migrations at a time; the others wait, then find them applied |
 * | writeReplica | string | rollup and period closer (`recordWriteReplica`, under their locks, after the catch-up barrier) | the same, before each round | names the replica every billing table was caught up on; a round on another replica first syncs them all (workers/replica-barrier.ts) |
 *
 * Quarantined rows (domain/quarantine.ts) are part of the same promise: a batch leaves the
 * in-flight set only by being written, by its refused rows entering the quarantine, or by
 * its job being removed (erasure, reconciler).
 *
 * "Complete" (`outstanding`): for a time range, no in-flight batch may touch it, and no
 * hour in it waits to be folded or recomputed; a period close asks the same of the batches
 * numbered up to its close sequence; an account also needs none of its rows in the range
 * quarantined. The usage API and the period closer both ask `outstanding`.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import type { RedisKeys } from '../schemas/queues.js';
import { quarantinedFor } from './quarantine.js';

// ---- ingest ------------------------------------------------------------------------------

// Taking the sequence number and entering the in-flight sets in one atomic step: a period
// close that reads the sequence counter then sees every batch numbered up to it.
const CLAIM = `
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
return seq`;

/** A batch's acceptance number, with its in-flight marks (by earliest hour and by sequence). */
export async function claimSequence(redis: Redis, keys: RedisKeys, batchId: string, earliestHour: number): Promise<number> {
  return Number(await redis.eval(CLAIM, 3, keys.batchSeq, keys.inflight, keys.inflightSeq, batchId, earliestHour));
}

/** Queues the removal of every mark of a batch on a MULTI, to commit with what replaces them. */
export function releaseInTx(tx: ChainableCommander, keys: RedisKeys, batchId: string): ChainableCommander {
  return tx.zrem(keys.inflight, batchId).zrem(keys.inflightSeq, batchId).zrem(keys.parkedSeq, batchId);
}

/** A batch that will never be written (its job failed to enqueue, or was removed): 1 if it was marked. */
export async function release(redis: Redis, keys: RedisKeys, batchId: string): Promise<number> {
  const results = await releaseInTx(redis.multi(), keys, batchId).exec();
  return Number(results?.[0]?.[1] ?? 0);
}

/** In-flight batch ids, oldest hours first (for the reconciler, which looks for jobless ones). */
export async function inflightBatches(redis: Redis, keys: RedisKeys, limit = 1000): Promise<string[]> {
  return redis.zrange(keys.inflight, '0', String(limit - 1));
}

// ---- the batch writer --------------------------------------------------------------------

// KEYS: inflight, inflight-seq, parked-seq, pending-hours, fold-watermark, dirty-hours.
// ARGV: batch id, sequence, hours…  One step, so the watermark cannot pass the batch
// between it leaving the in-flight set and its hours being marked.
const MARK_WRITTEN = `
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
local late = tonumber(ARGV[2]) <= tonumber(redis.call('GET', KEYS[5]) or '0')
for i = 3, #ARGV do
  redis.call('ZADD', KEYS[4], 'GT', ARGV[2], ARGV[i])
  if late then redis.call('HINCRBY', KEYS[6], ARGV[i], 1) end
end
return late and 1 or 0`;

/**
 * A batch is written: its hours wait for the next fold, and it leaves the in-flight and
 * parked sets. A batch behind the watermark (a replayed dead letter, a job redelivered
 * after its release) cannot be folded in order: its hours are marked for whole
 * recomputation instead.
 */
export function markWrittenInPipeline(p: ChainableCommander, keys: RedisKeys, batch: { batchId: string; batchSeq: number; hours: readonly number[] }): ChainableCommander {
  return p.eval(MARK_WRITTEN, 6, keys.inflight, keys.inflightSeq, keys.parkedSeq, keys.pendingHours, keys.foldWatermark, keys.dirtyHours, batch.batchId, batch.batchSeq, ...batch.hours);
}

/** `markWrittenInPipeline` for each batch, in one round trip; the first error is thrown. */
export async function markWritten(redis: Redis, keys: RedisKeys, batches: readonly { batchId: string; batchSeq: number; hours: readonly number[] }[]): Promise<void> {
  const pipeline = redis.pipeline();
  for (const b of batches) markWrittenInPipeline(pipeline, keys, b);
  const failed = ((await pipeline.exec()) ?? []).find(([err]) => err);
  if (failed?.[0]) throw failed[0];
}

/** A dead letter: the fold watermark may pass it (its in-flight mark stays: it is not written). */
export async function park(redis: Redis, keys: RedisKeys, batch: { batchId: string; batchSeq: number }): Promise<void> {
  await redis.zadd(keys.parkedSeq, batch.batchSeq, batch.batchId);
}

// ---- the rollup --------------------------------------------------------------------------

// KEYS: batch-seq counter, inflight-seq, parked-seq, fold-watermark. The lowest unwritten,
// unparked batch bounds W; with none in flight, every numbered batch is written. Recorded
// in the same step, so a batch written after it can tell whether it came too late.
const ADVANCE = `
local w = tonumber(redis.call('GET', KEYS[1]) or '0')
local members = redis.call('ZRANGE', KEYS[2], 0, 199, 'WITHSCORES')
local lowest = nil
for i = 1, #members, 2 do
  if not redis.call('ZSCORE', KEYS[3], members[i]) then lowest = tonumber(members[i + 1]); break end
end
-- 200 parked batches in a row: stop below the last one looked at.
if lowest == nil and #members >= 400 then lowest = tonumber(members[#members]) end
if lowest ~= nil then w = lowest - 1 end
local recorded = tonumber(redis.call('GET', KEYS[4]) or '0')
if w < recorded then w = recorded end
redis.call('SET', KEYS[4], w)
return w`;

/** Advances the recorded watermark as far as written batches allow, and returns it. */
export async function advanceFoldWatermark(redis: Redis, keys: RedisKeys): Promise<number> {
  return Number(await redis.eval(ADVANCE, 4, keys.batchSeq, keys.inflightSeq, keys.parkedSeq, keys.foldWatermark));
}

/** The sequence every aggregate is folded through, or undefined when there is no record. */
export async function readFoldedThrough(redis: Redis, keys: RedisKeys): Promise<number | undefined> {
  const v = await redis.get(keys.foldedThrough);
  return v === null ? undefined : Number(v);
}

/** Hours with written rows not folded in yet, ascending. */
export async function pendingHours(redis: Redis, keys: RedisKeys): Promise<number[]> {
  return (await redis.zrange(keys.pendingHours, '0', '-1')).map(Number).sort((a, b) => a - b);
}

/**
 * A fold round is done: the hours it could not fold go to whole recomputation, the hours it
 * folded get their analytics redone, and the record moves to `through` — in one MULTI, so a
 * crash repeats the round (each aggregate row's through_seq makes a repeat add nothing).
 * Then every hour whose written batches are all folded leaves the pending set.
 */
export async function finishFoldRound(redis: Redis, keys: RedisKeys, round: { through: number; toRecompute: readonly number[]; folded: readonly number[] }): Promise<void> {
  const tx = redis.multi();
  for (const hour of round.toRecompute) tx.hincrby(keys.dirtyHours, String(hour), 1);
  for (const hour of round.folded) tx.hincrby(keys.analyticsHours, String(hour), 1);
  tx.set(keys.foldedThrough, String(round.through));
  await tx.exec();
  await releaseFoldedHours(redis, keys, round.through);
}

/** Hours whose every written batch is folded through `through` (or sent to recomputation) stop pending. */
export async function releaseFoldedHours(redis: Redis, keys: RedisKeys, through: number): Promise<void> {
  await redis.zremrangebyscore(keys.pendingHours, '-inf', String(through));
}

/** Hours waiting for whole-hour work, with the generation each was marked at. */
export async function hoursToRecompute(redis: Redis, keys: RedisKeys, kind: 'recompute' | 'analytics'): Promise<Record<string, string>> {
  return redis.hgetall(kind === 'recompute' ? keys.dirtyHours : keys.analyticsHours);
}

// Clears a mark only if nothing marked the hour again meanwhile.
const CLEAR_IF_UNCHANGED = `
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
return 0`;

/**
 * The hour's whole-hour work is done as of `generation`. A recomputation includes the
 * analytics, so it clears their mark too; an hour dropped unrecomputed (past the raw
 * retention) clears its mark whatever the generation.
 */
export async function hourDone(redis: Redis, keys: RedisKeys, kind: 'recompute' | 'analytics' | 'dropped', hour: number, generation?: string): Promise<void> {
  const h = String(hour);
  if (kind === 'dropped') await redis.hdel(keys.dirtyHours, h);
  else if (kind === 'analytics') await redis.eval(CLEAR_IF_UNCHANGED, 1, keys.analyticsHours, h, generation ?? '');
  else {
    await redis.eval(CLEAR_IF_UNCHANGED, 1, keys.dirtyHours, h, generation ?? '');
    await redis.hdel(keys.analyticsHours, h);
  }
}

// ---- the period closer -------------------------------------------------------------------

/** The close sequence of a period starting to close: every batch numbered up to it is on time. */
export async function readCloseSequence(redis: Redis, keys: RedisKeys): Promise<number> {
  return Number((await redis.get(keys.batchSeq)) ?? 0);
}

/** Marks hours for whole recomputation (a closing period splits on-time from late there). */
export async function markHoursDirty(redis: Redis, keys: RedisKeys, hours: readonly (number | string)[]): Promise<void> {
  if (hours.length === 0) return;
  const tx = redis.multi();
  for (const h of hours) tx.hincrby(keys.dirtyHours, String(h), 1);
  await tx.exec();
}

/** Billing-period states changed: every cache of them reloads. */
export async function bumpPeriodsVersion(redis: Redis, keys: RedisKeys): Promise<void> {
  await redis.incr(keys.periodsVersion);
}

// ---- row versions ------------------------------------------------------------------------

// KEYS: row-version counter. ARGV: floor (the caller's wall clock as ms × 1000, plus 1000).
// Absent counter: nil, so the caller seeds it from what the tables hold (a Redis that lost
// its data must not restart the versions below rows already written). Every number stays
// below 2^53, exact in Lua's doubles; the floor goes back as the caller's own string, so
// no float is ever formatted.
const NEXT_ROW_VERSION = `
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local v = redis.call('INCR', KEYS[1])
if v < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1])
  return ARGV[1]
end
return v`;

// KEYS: row-version counter. ARGV: the highest version found in the tables. Creates the
// counter, or raises it; never lowers it.
const SEED_ROW_VERSION = `
local current = redis.call('GET', KEYS[1])
if (not current) or tonumber(current) < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1`;

/**
 * A ReplacingMergeTree row version above every version issued before, fleet-wide:
 * max(last issued + 1, (clock + 1 ms) × 1000), in one step. The floor keeps new versions
 * above the rows the wall-clock scheme (ms × 1000, at most a few above it) wrote before
 * this counter existed; the counter keeps them above each other when a writer's clock is
 * behind. Taken under the rollup or closer lock, so rounds' versions follow their order.
 * `seed` gives the highest version the tables hold; it is asked only when the counter is
 * absent (first use, or a Redis that lost its data).
 */
export async function nextRowVersion(redis: Redis, keys: RedisKeys, clockMs: number, seed: () => Promise<string | number>): Promise<number> {
  const floor = String((Math.floor(clockMs) + 1) * 1000);
  let issued = await redis.eval(NEXT_ROW_VERSION, 1, keys.rowVersion, floor);
  if (issued === null) {
    await seedRowVersion(redis, keys, await seed());
    issued = await redis.eval(NEXT_ROW_VERSION, 1, keys.rowVersion, floor);
  }
  const version = Number(issued);
  if (issued === null || !Number.isSafeInteger(version) || version <= 0) throw new Error(`row version ${String(issued)} is not an exact integer`);
  return version;
}

/** Raises the row-version counter to at least `atLeast` (never lowers it). */
export async function seedRowVersion(redis: Redis, keys: RedisKeys, atLeast: string | number): Promise<void> {
  await redis.eval(SEED_ROW_VERSION, 1, keys.rowVersion, String(atLeast));
}

// ---- complete ----------------------------------------------------------------------------

export interface IncompleteReason {
  code: 'batches_in_flight' | 'hours_pending' | 'quarantined';
  message: string;
  /** For `quarantined`: the entries to inspect, replay or discard (GET /v1/quarantine/:id). */
  quarantine_ids?: string[];
}

export interface OutstandingQuery {
  /** Usage hours (epoch seconds) [fromS, toS). */
  fromS: number;
  toS: number;
  /** Only batches numbered up to this count (a period's close sequence); all when absent. */
  throughSeq?: number;
}

// KEYS: inflight (by hour), inflight-seq. ARGV: toS (exclusive), through seq or ''.
// In-flight batches are scored by their earliest hour; one that starts before `to` may
// touch the range: conservative for batches spanning many hours, never optimistic.
const INFLIGHT_TOUCHING = `
if ARGV[2] == '' then return redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. ARGV[1]) end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local n = 0
for _, id in ipairs(ids) do
  local seq = redis.call('ZSCORE', KEYS[2], id)
  if seq and tonumber(seq) <= tonumber(ARGV[2]) then n = n + 1 end
end
return n`;

/**
 * What keeps a range from being complete: acknowledged batches not yet written, or hours
 * not yet folded or recomputed. Empty means every acknowledged sample of the range is in
 * the aggregates. The one definition of "complete" (see the header).
 */
export async function outstanding(redis: Redis, keys: RedisKeys, q: OutstandingQuery): Promise<IncompleteReason[]> {
  const [inflight, dirty, pending] = await Promise.all([
    redis.eval(INFLIGHT_TOUCHING, 2, keys.inflight, keys.inflightSeq, String(q.toS), q.throughSeq === undefined ? '' : String(q.throughSeq)),
    redis.hkeys(keys.dirtyHours),
    redis.zrange(keys.pendingHours, '0', '-1'),
  ]);
  const reasons: IncompleteReason[] = [];
  if (Number(inflight) > 0) reasons.push({ code: 'batches_in_flight', message: `${inflight} acknowledged batch(es) that may touch this range are not written yet` });
  const waiting = new Set([...dirty, ...pending].map(Number).filter((h) => h >= q.fromS && h < q.toS));
  if (waiting.size > 0) reasons.push({ code: 'hours_pending', message: `${waiting.size} hour(s) of this range wait to be folded into the totals or recomputed` });
  return reasons;
}

export async function isComplete(redis: Redis, keys: RedisKeys, fromS: number, toS: number): Promise<boolean> {
  return (await outstanding(redis, keys, { fromS, toS })).length === 0;
}

/** One account's completeness over [fromS, toS): `outstanding`, and none of its rows quarantined. */
export async function accountCompleteness(redis: Redis, keys: RedisKeys, account: string, fromS: number, toS: number): Promise<{ complete: boolean; incomplete_reasons: IncompleteReason[] }> {
  const [lag, quarantined] = await Promise.all([outstanding(redis, keys, { fromS, toS }), quarantinedFor(redis, keys, account, fromS, toS)]);
  const reasons = [...lag];
  if (quarantined.length > 0) {
    reasons.push({
      code: 'quarantined',
      message: `the engine refused ${quarantined.length === 1 ? 'rows of one acknowledged batch' : `rows of ${quarantined.length} acknowledged batches`} of this account in this range; they are quarantined until replayed or discarded (${quarantined[0]!.reason})`,
      quarantine_ids: quarantined.map((q) => q.id),
    });
  }
  return { complete: reasons.length === 0, incomplete_reasons: reasons };
}

/**
 * Everything acknowledged is in every aggregate, analytics included (which trail billing
 * by a few seconds): what a driver waits for before reading totals or cohorts.
 */
export async function isIdle(redis: Redis, keys: RedisKeys): Promise<boolean> {
  const counts = await Promise.all([redis.zcard(keys.inflight), redis.hlen(keys.dirtyHours), redis.zcard(keys.pendingHours), redis.hlen(keys.analyticsHours)]);
  return counts.every((n) => n === 0);
}

/** Gauges for /metrics: backlog by stage. */
export async function ledgerGauges(redis: Redis, keys: RedisKeys): Promise<{ inflight: number; dirtyHours: number; foldLag: number }> {
  const [inflight, dirty, accepted, folded] = await Promise.all([redis.zcard(keys.inflight), redis.hlen(keys.dirtyHours), redis.get(keys.batchSeq), redis.get(keys.foldedThrough)]);
  return { inflight, dirtyHours: dirty, foldLag: Math.max(0, Number(accepted ?? 0) - Number(folded ?? 0)) };
}

// ---- the write replica (read-your-writes on a replicated cluster) ---------------------

/** The replica billing rounds last caught up on, or undefined before the first round. */
export async function readWriteReplica(redis: Redis, keys: RedisKeys): Promise<string | undefined> {
  return (await redis.get(keys.writeReplica)) ?? undefined;
}

/** Every billing table is caught up on `replica`: rounds there may read what was acknowledged. */
export async function recordWriteReplica(redis: Redis, keys: RedisKeys, replica: string): Promise<void> {
  await redis.set(keys.writeReplica, replica);
}
