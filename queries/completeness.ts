/**
 * Whether every sample acknowledged so far for a time range is reflected in the
 * aggregates: no accepted batch touching the range is still waiting to be written, no
 * written one is waiting to be folded in, and no hour in it is waiting to be recomputed.
 */
import type { Redis } from 'ioredis';
import type { RedisKeys } from '../schemas/queues.js';

export async function isComplete(redis: Redis, keys: RedisKeys, fromS: number, toS: number): Promise<boolean> {
  // In-flight batches are scored by their earliest hour; one that starts before `to` may
  // touch the range. Conservative for batches spanning many hours, never optimistic.
  const [inflight, dirty, pending] = await Promise.all([
    redis.zcount(keys.inflight, '-inf', `(${toS}`),
    redis.hkeys(keys.dirtyHours),
    redis.zrange(keys.pendingHours, '0', '-1'),
  ]);
  if (inflight > 0) return false;
  return ![...dirty, ...pending].map(Number).some((h) => h >= fromS && h < toS);
}

/**
 * Everything acknowledged is in every aggregate, analytics included (which trail billing
 * by a few seconds): what a driver waits for before reading totals or cohorts.
 */
export async function isIdle(redis: Redis, keys: RedisKeys): Promise<boolean> {
  const counts = await Promise.all([redis.zcard(keys.inflight), redis.hlen(keys.dirtyHours), redis.zcard(keys.pendingHours), redis.hlen(keys.analyticsHours)]);
  return counts.every((n) => n === 0);
}
