/**
 * Erasure requests and the set of accounts being erased: what the privacy routes and the
 * retention sweep file, what ingest consults, and what the erasure worker carries out
 * (workers/erasure.ts) and reports.
 *
 * Keys (schemas/queues.ts `redisKeys`):
 *   erasing             SET of accounts being erased: ingest refuses their samples until
 *                       the erasure is done (read by every ingest process at most every
 *                       ERASING_CHECK_MS; the worker waits longer before it scrubs)
 *   erasureRequest(id)  HASH of one request, kept STATUS_TTL_S: the account, status, reason,
 *                       when each step finished, what was removed per table, the billing
 *                       periods it touched and the fingerprints kept. It names the account
 *                       because it is the record the privacy team answers the data subject
 *                       with (policy §9); the audit trail already holds the same id for 24
 *                       months (the DELETE's path), so this keeps nothing longer than that.
 * After an erasure, the account is on the erased list (domain/erased-identifiers.ts).
 */
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { z } from 'zod';
import type { ErasureJob, RedisKeys } from '../schemas/queues.js';
import { ERASED_LIMITS, parseFingerprintKey, queueErasedAccount, queuePrune, trimTo, type FingerprintKey } from './erased-identifiers.js';

/** How stale an ingest process's view of the accounts being erased may be (erasure waits longer). */
export const ERASING_CHECK_MS = 1000;

/** How long a request's status is kept. */
export const STATUS_TTL_S = 90 * 24 * 3600;

export type ErasureStatus = 'queued' | 'running' | 'done' | 'failed';

/** The steps of an erasure, in order (workers/erasure.ts header). */
export const ERASURE_STEPS = ['samples_refused', 'identifiers_fingerprinted', 'queue_scrubbed', 'sources_deleted', 'aggregates_deleted', 'verified', 'account_listed_as_erased'] as const;
export type ErasureStep = (typeof ERASURE_STEPS)[number];

/** What an erasure removes, by the name the status reports it under. */
export const REMOVED_COUNTERS = {
  raw_samples: 'billing.samples_raw rows',
  hourly_usage: 'billing.usage_hourly rows (hourly totals and their coverage columns)',
  adjustments: 'billing.adjustments_hourly rows',
  lifecycle: 'billing.accounts rows (termination and retention deadline)',
  queued_jobs: 'batch jobs rewritten or removed (waiting, delayed, completed)',
  queued_rows: 'rows taken out of those jobs',
  dead_letter_jobs: 'dead-lettered batch jobs rewritten or removed',
  dead_letter_rows: 'rows taken out of dead letters',
  quarantined_rows: 'quarantined rows',
} as const;
export type RemovedCounter = keyof typeof REMOVED_COUNTERS;

/** Files a request: marks the account at once (so ingest refuses it) and queues the work. */
export async function requestErasure(redis: Redis, keys: RedisKeys, erasureQueue: Queue<ErasureJob>, account: string, reason: ErasureJob['reason']): Promise<string> {
  const requestId = randomUUID();
  const requestedAtMs = Date.now();
  await redis
    .multi()
    .sadd(keys.erasing, account)
    .hset(keys.erasureRequest(requestId), { status: 'queued', account, reason, requested_at: new Date(requestedAtMs).toISOString() })
    .expire(keys.erasureRequest(requestId), STATUS_TTL_S)
    .exec();
  await erasureQueue.add('erase', { requestId, account, requestedAtMs, reason }, { jobId: requestId });
  return requestId;
}

const rfc3339 = z.string().regex(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
const count = z.coerce.number().int().nonnegative();

export const periodTouchedSchema = z.object({ period: z.string(), status: z.enum(['open', 'closing', 'closed']), usage_rows: count, adjustment_rows: count });
export type PeriodTouched = z.infer<typeof periodTouchedSchema>;

/** A request's status as the API returns it; parsed from the hash, so a field never leaks unnamed. */
export interface ErasureReport {
  account: string | null;
  status: ErasureStatus;
  reason: string | null;
  requested_at: string | null;
  started_at: string | null;
  finished_at: string | null;
  passes: number | null;
  error: string | null;
  steps: { step: ErasureStep; finished_at: string | null }[];
  removed: Record<RemovedCounter, number>;
  periods: PeriodTouched[];
  fingerprints: { account_listed: boolean; identifiers: number; identifiers_omitted: number; dropped_by_bound: number; expires_at: string | null };
}

export async function erasureStatus(redis: Redis, keys: RedisKeys, requestId: string): Promise<ErasureReport | undefined> {
  const h = await redis.hgetall(keys.erasureRequest(requestId));
  if (Object.keys(h).length === 0) return undefined;
  const time = (v: string | undefined) => (rfc3339.safeParse(v).success ? v! : null);
  const num = (v: string | undefined) => (count.safeParse(v).success ? Number(v) : 0);
  let periods: PeriodTouched[] = [];
  try {
    periods = z.array(periodTouchedSchema).parse(JSON.parse(h.periods ?? '[]'));
  } catch {
    periods = [];
  }
  return {
    account: h.account ?? null,
    status: z.enum(['queued', 'running', 'done', 'failed']).catch('queued').parse(h.status),
    reason: h.reason ?? null,
    requested_at: time(h.requested_at),
    started_at: time(h.started_at),
    finished_at: time(h.finished_at),
    passes: h.passes !== undefined ? num(h.passes) : null,
    error: h.error ?? null,
    steps: ERASURE_STEPS.map((step) => ({ step, finished_at: time(h[`step:${step}`]) })),
    removed: Object.fromEntries(Object.keys(REMOVED_COUNTERS).map((k) => [k, num(h[`removed:${k}`])])) as Record<RemovedCounter, number>,
    periods,
    fingerprints: {
      account_listed: h['fp:account'] === '1',
      identifiers: num(h['fp:identifiers']),
      identifiers_omitted: num(h['fp:omitted']),
      dropped_by_bound: num(h['fp:dropped']),
      expires_at: time(h['fp:expires_at']),
    },
  };
}

/** The worker took the request: the account is marked again, in case the request predates a restart. */
export async function erasureStarted(redis: Redis, keys: RedisKeys, requestId: string, account: string): Promise<void> {
  await redis
    .multi()
    .hset(keys.erasureRequest(requestId), { status: 'running', account, started_at: new Date().toISOString() })
    .hdel(keys.erasureRequest(requestId), 'error')
    .sadd(keys.erasing, account)
    .exec();
}

/** A step finished (each pass of a repeated step moves its time). */
export async function erasureStepDone(redis: Redis, keys: RedisKeys, requestId: string, step: ErasureStep, at = Date.now()): Promise<void> {
  await redis.hset(keys.erasureRequest(requestId), `step:${step}`, new Date(at).toISOString());
}

/** Adds to what an erasure removed (a second pass adds what a late job wrote). */
export async function erasureRemoved(redis: Redis, keys: RedisKeys, requestId: string, counts: Partial<Record<RemovedCounter, number>>): Promise<void> {
  const entries = Object.entries(counts).filter(([, n]) => n !== undefined && n > 0);
  if (entries.length === 0) return;
  const multi = redis.multi();
  for (const [k, n] of entries) multi.hincrby(keys.erasureRequest(requestId), `removed:${k}`, n!);
  await multi.exec();
}

export async function erasureNoted(redis: Redis, keys: RedisKeys, requestId: string, fields: Record<string, string>): Promise<void> {
  await redis.hset(keys.erasureRequest(requestId), fields);
}

/**
 * Done: in one MULTI the account goes on the erased list and off `erasing`, so ingest,
 * which checks the list on every batch, never sees a moment where neither refuses it.
 */
export async function erasureDone(
  redis: Redis,
  keys: RedisKeys,
  requestId: string,
  account: string,
  passes: number,
  listed: { fingerprint: string; expiresAtMs: number },
): Promise<void> {
  const now = new Date().toISOString();
  const multi = redis.multi();
  queueErasedAccount(multi, keys, listed.fingerprint, listed.expiresAtMs)
    .srem(keys.erasing, account)
    .hset(keys.erasureRequest(requestId), {
      status: 'done',
      finished_at: now,
      passes: String(passes),
      'fp:account': '1',
      'fp:expires_at': new Date(listed.expiresAtMs).toISOString(),
      [`step:account_listed_as_erased`]: now,
    })
    .hdel(keys.erasureRequest(requestId), 'error');
  await multi.exec();
  const dropped = await trimTo(redis, keys, keys.erasedAccounts, ERASED_LIMITS.accounts);
  if (dropped > 0) await redis.hincrby(keys.erasureRequest(requestId), 'fp:dropped', dropped);
}

export async function erasureFailed(redis: Redis, keys: RedisKeys, requestId: string, error: string): Promise<void> {
  await redis.hset(keys.erasureRequest(requestId), { status: 'failed', error });
}

/**
 * What ingest needs to refuse an account's samples, in one round trip: the accounts being
 * erased and the installation's fingerprint key (absent until the first erasure). The same
 * round trip prunes expired fingerprints, so they are gone within a second of their expiry
 * wherever ingest runs.
 */
export async function erasureView(redis: Redis, keys: RedisKeys, nowMs = Date.now()): Promise<{ accounts: Set<string>; fingerprintKey: FingerprintKey | undefined }> {
  const res = await queuePrune(redis.pipeline().smembers(keys.erasing).get(keys.erasedKey), keys, nowMs).exec();
  // A failed read must not pass for "nobody is erased": ingest answers 503 instead.
  const failed = res?.find(([err]) => err);
  if (!res || failed) throw failed?.[0] ?? new Error('the erasure view could not be read from Redis');
  const members = res?.[0]?.[1];
  return { accounts: new Set(Array.isArray(members) ? (members as string[]) : []), fingerprintKey: parseFingerprintKey(res?.[1]?.[1] as string | null) };
}

export async function accountsBeingErased(redis: Redis, keys: RedisKeys): Promise<Set<string>> {
  return new Set(await redis.smembers(keys.erasing));
}

export async function isBeingErased(redis: Redis, keys: RedisKeys, account: string): Promise<boolean> {
  return (await redis.sismember(keys.erasing, account)) === 1;
}
