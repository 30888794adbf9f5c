/**
 * In-flight batches: acknowledged (or about to be) but not yet written to ClickHouse.
 * Two views of the same set, kept together: by earliest usage hour (for `complete` over a
 * time range) and by acceptance sequence (for closing a billing period: every batch
 * accepted before the close must be written before the period's totals are final).
 */
import type { ChainableCommander, Redis } from 'ioredis';
import type { RedisKeys } from '../schemas/queues.js';

// Taking the sequence number and entering the in-flight sets in one atomic step: a period
// close that reads the sequence counter then sees every batch numbered up to it.
const CLAIM = `
local seq = redis.call('INCR', KEYS[1])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
redis.call('ZADD', KEYS[3], seq, ARGV[1])
return seq`;

export async function claimSequence(redis: Redis, keys: RedisKeys, batchId: string, earliestHour: number): Promise<number> {
  return Number(await redis.eval(CLAIM, 3, keys.batchSeq, keys.inflight, keys.inflightSeq, batchId, earliestHour));
}

/** Queues the removal on a MULTI, so it commits with whatever marks the batch written. */
export function releaseInTx(tx: ChainableCommander, keys: RedisKeys, batchId: string): ChainableCommander {
  return tx.zrem(keys.inflight, batchId).zrem(keys.inflightSeq, batchId).zrem(keys.parkedSeq, batchId);
}

export async function release(redis: Redis, keys: RedisKeys, batchId: string): Promise<number> {
  const results = await releaseInTx(redis.multi(), keys, batchId).exec();
  return Number(results?.[0]?.[1] ?? 0);
}

/** Batches accepted with a sequence number up to `seq` that are not yet written. */
export async function inflightUpTo(redis: Redis, keys: RedisKeys, seq: number): Promise<number> {
  return redis.zcount(keys.inflightSeq, '-inf', String(seq));
}
