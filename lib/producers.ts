/**
 * Per-producer sequence numbers. A producer may number its batches (X-Producer-Id,
 * X-Producer-Seq); the pipeline then knows which batches it never received. Missing
 * numbers are kept (up to a bound) until they arrive, so a retry closes its gap.
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../schemas/queues.js';

/** Remembered missing numbers per producer; beyond it, only their count is kept. */
export const MAX_TRACKED_GAPS = 10_000;

// KEYS: producers hash (id → high water mark), this producer's missing set, overflow hash.
const RECORD = `
local high = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '-1')
local seq = tonumber(ARGV[2])
if seq > high then
  local first = high + 1
  local missing = seq - first
  local tracked = math.min(missing, tonumber(ARGV[3]) - redis.call('ZCARD', KEYS[2]))
  for s = seq - tracked, seq - 1 do redis.call('ZADD', KEYS[2], s, s) end
  if missing > tracked then redis.call('HINCRBY', KEYS[3], ARGV[1], missing - tracked) end
  redis.call('HSET', KEYS[1], ARGV[1], seq)
else
  redis.call('ZREM', KEYS[2], seq)
end
return 1`;

export async function recordProducerSeq(redis: Redis, keys: RedisKeys, producer: string, seq: number): Promise<void> {
  await redis.eval(RECORD, 3, keys.producers, keys.producerGaps(producer), keys.producerUntracked, producer, seq, MAX_TRACKED_GAPS);
}

export interface ProducerReport {
  producer: string;
  last_seq: number;
  missing: number;
  /** The oldest missing sequence numbers (at most 20). */
  first_missing: number[];
}

export async function producerReports(redis: Redis, keys: RedisKeys): Promise<ProducerReport[]> {
  const highs = await redis.hgetall(keys.producers);
  const untracked = await redis.hgetall(keys.producerUntracked);
  const out: ProducerReport[] = [];
  for (const [producer, high] of Object.entries(highs).sort(([a], [b]) => a.localeCompare(b))) {
    const gapsKey = keys.producerGaps(producer);
    const [count, first] = await Promise.all([redis.zcard(gapsKey), redis.zrange(gapsKey, '0', '19')]);
    out.push({ producer, last_seq: Number(high), missing: count + Number(untracked[producer] ?? 0), first_missing: first.map(Number) });
  }
  return out;
}
