/**
 * Whether every sample acknowledged so far for a time range is reflected in the
 * aggregates: no accepted batch touching the range is still waiting to be written, no
 * written one is waiting to be folded in, and no hour in it is waiting to be recomputed.
 * For one account, also: none of its rows in the range sits in the quarantine. Rows the
 * engine refused hold back only their own account, and the answer says why.
 */
import type { Redis } from 'ioredis';
import { quarantinedFor } from '../lib/quarantine.js';
import type { RedisKeys } from '../schemas/queues.js';

export async function isComplete(redis: Redis, keys: RedisKeys, fromS: number, toS: number): Promise<boolean> {
  return (await pipelineLag(redis, keys, fromS, toS)).length === 0;
}

export interface IncompleteReason {
  code: 'batches_in_flight' | 'hours_pending' | 'quarantined';
  message: string;
  /** For `quarantined`: the entries to inspect, replay or discard (GET /v1/quarantine/:id). */
  quarantine_ids?: string[];
}

/** One account's completeness over [fromS, toS), with a reason for each thing missing. */
export async function accountCompleteness(redis: Redis, keys: RedisKeys, account: string, fromS: number, toS: number): Promise<{ complete: boolean; incomplete_reasons: IncompleteReason[] }> {
  const [lag, quarantined] = await Promise.all([pipelineLag(redis, keys, fromS, toS), quarantinedFor(redis, keys, account, fromS, toS)]);
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

async function pipelineLag(redis: Redis, keys: RedisKeys, fromS: number, toS: number): Promise<IncompleteReason[]> {
  // In-flight batches are scored by their earliest hour; one that starts before `to` may
  // touch the range. Conservative for batches spanning many hours, never optimistic.
  const [inflight, dirty, pending] = await Promise.all([
    redis.zcount(keys.inflight, '-inf', `(${toS}`),
    redis.hkeys(keys.dirtyHours),
    redis.zrange(keys.pendingHours, '0', '-1'),
  ]);
  const reasons: IncompleteReason[] = [];
  if (inflight > 0) reasons.push({ code: 'batches_in_flight', message: `${inflight} acknowledged batch(es) that may touch this range are not written yet` });
  const waiting = [...dirty, ...pending].map(Number).filter((h) => h >= fromS && h < toS);
  if (waiting.length > 0) reasons.push({ code: 'hours_pending', message: `${new Set(waiting).size} hour(s) of this range wait to be folded into the totals or recomputed` });
  return reasons;
}

/**
 * Everything acknowledged is in every aggregate, analytics included (which trail billing
 * by a few seconds): what a driver waits for before reading totals or cohorts.
 */
export async function isIdle(redis: Redis, keys: RedisKeys): Promise<boolean> {
  const counts = await Promise.all([redis.zcard(keys.inflight), redis.hlen(keys.dirtyHours), redis.zcard(keys.pendingHours), redis.hlen(keys.analyticsHours)]);
  return counts.every((n) => n === 0);
}
