/**
 * The fold watermark: the highest acceptance sequence W such that every batch numbered up
 * to W is written to ClickHouse (or will never be: its ingest failed before the 202). The
 * rollup folds rows up to W in acceptance order, so an earlier batch can never arrive
 * after its successors were counted. Dead-lettered batches ("parked") do not hold the
 * watermark back: if one is replayed later, its hours are recomputed whole.
 */
import type { ChainableCommander, Redis } from 'ioredis';
import type { RedisKeys } from '../schemas/queues.js';

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

/** A dead-lettered batch: the watermark may pass it. */
export function parkInTx(tx: ChainableCommander, keys: RedisKeys, batchId: string, seq: number): ChainableCommander {
  return tx.zadd(keys.parkedSeq, seq, batchId);
}
