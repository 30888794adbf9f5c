/**
 * Whether every sample acknowledged so far for a time range is reflected in the
 * aggregates: no accepted batch touching the range is still waiting to be written, and no
 * hour in it is waiting to be recomputed.
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../schemas/queues.js';

export async function isComplete(redis: Redis, keys: RedisKeys, fromS: number, toS: number): Promise<boolean> {
  // In-flight batches are scored by their earliest hour; one that starts before `to` may
  // touch the range. Conservative for batches spanning many hours, never optimistic.
  const [inflight, dirty] = await Promise.all([redis.zcount(keys.inflight, '-inf', `(${toS}`), redis.hkeys(keys.dirtyHours)]);
  if (inflight > 0) return false;
  return !dirty.map(Number).some((h) => h >= fromS && h < toS);
}

/** Everything acknowledged, for any time: what a driver waits for before reading totals. */
export async function isIdle(redis: Redis, keys: RedisKeys): Promise<boolean> {
  const [inflight, dirty] = await Promise.all([redis.zcard(keys.inflight), redis.hlen(keys.dirtyHours)]);
  return inflight === 0 && dirty === 0;
}
