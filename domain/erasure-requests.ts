/**
 * Erasure requests and the set of accounts being erased: what the privacy routes and the
 * retention sweep file, what ingest consults, and what the erasure worker carries out
 * (workers/erasure.ts).
 *
 * Keys (schemas/queues.ts `redisKeys`):
 *   erasing             SET of accounts being erased: ingest refuses their samples until
 *                       the erasure is done (read by every ingest process at most every
 *                       ERASING_CHECK_MS; the worker waits longer before it scrubs)
 *   erasureRequest(id)  HASH status, reason and times of one request (no account id once
 *                       done), kept 90 days
 */
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { ErasureJob, RedisKeys } from '../schemas/queues.js';

/** How stale an ingest process's view of the accounts being erased may be (erasure waits longer). */
export const ERASING_CHECK_MS = 1000;

const STATUS_TTL_S = 90 * 24 * 3600;

export type ErasureStatus = 'queued' | 'running' | 'done' | 'failed';

/** Files a request: marks the account at once (so ingest refuses it) and queues the work. */
export async function requestErasure(redis: Redis, keys: RedisKeys, erasureQueue: Queue<ErasureJob>, account: string, reason: ErasureJob['reason']): Promise<string> {
  const requestId = randomUUID();
  const requestedAtMs = Date.now();
  await redis
    .multi()
    .sadd(keys.erasing, account)
    .hset(keys.erasureRequest(requestId), { status: 'queued', reason, requested_at: new Date(requestedAtMs).toISOString() })
    .expire(keys.erasureRequest(requestId), STATUS_TTL_S)
    .exec();
  await erasureQueue.add('erase', { requestId, account, requestedAtMs, reason }, { jobId: requestId });
  return requestId;
}

export async function erasureStatus(redis: Redis, keys: RedisKeys, requestId: string): Promise<Record<string, string> | undefined> {
  const status = await redis.hgetall(keys.erasureRequest(requestId));
  return Object.keys(status).length ? status : undefined;
}

/** The worker took the request: the account is marked again, in case the request predates a restart. */
export async function erasureStarted(redis: Redis, keys: RedisKeys, requestId: string, account: string): Promise<void> {
  await redis.multi().hset(keys.erasureRequest(requestId), { status: 'running', started_at: new Date().toISOString() }).sadd(keys.erasing, account).exec();
}

/** Done: the account may be billed again from zero, and the request keeps no account id. */
export async function erasureDone(redis: Redis, keys: RedisKeys, requestId: string, account: string, passes: number): Promise<void> {
  await redis
    .multi()
    .srem(keys.erasing, account)
    .hset(keys.erasureRequest(requestId), { status: 'done', finished_at: new Date().toISOString(), passes: String(passes) })
    .exec();
}

export async function erasureFailed(redis: Redis, keys: RedisKeys, requestId: string, error: string): Promise<void> {
  await redis.hset(keys.erasureRequest(requestId), { status: 'failed', error });
}

export async function accountsBeingErased(redis: Redis, keys: RedisKeys): Promise<Set<string>> {
  return new Set(await redis.smembers(keys.erasing));
}

export async function isBeingErased(redis: Redis, keys: RedisKeys, account: string): Promise<boolean> {
  return (await redis.sismember(keys.erasing, account)) === 1;
}
