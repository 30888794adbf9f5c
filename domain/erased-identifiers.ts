/**
 * What the pipeline keeps of an erased account: one-way fingerprints of its identifiers,
 * never the identifiers. They let ingest refuse samples that would silently re-create the
 * account (`account_erased`), and let the leak scanner recognize an erased customer's ids
 * in analytics or in a file after billing no longer knows them.
 *
 * A fingerprint is HMAC-SHA256(installation key, identifier), its first 16 bytes in
 * base64url (22 characters). Without the key nobody can test a guessed id against the
 * list; with it (Redis access) one can test a guess, never list the ids: that is the point,
 * recognition without retention.
 *
 * Keys (schemas/queues.ts `redisKeys`):
 *   erasedKey          STRING  32 random bytes, hex: the installation's HMAC key, created by
 *                              the first erasure (SET NX), never changed, never logged or
 *                              returned. Read by ingest (every ERASING_CHECK_MS while absent,
 *                              then cached), the erasure worker, reinstatement, the scanner.
 *   erasedAccounts     ZSET    fingerprint → expiry (epoch ms) of erased accounts. Written by
 *                              the erasure worker when an erasure is done, in the same MULTI
 *                              that lets the account go from `erasing`, so ingest never sees a
 *                              gap; removed by reinstatement (privacy key) or expiry.
 *   erasedIdentifiers  ZSET    fingerprint → expiry of the other identifiers an erasure
 *                              removed (resource ids), written before the rows are deleted so
 *                              a retried erasure still knows them. Read by the scanner only.
 *   erasedDropped      STRING  how many fingerprints the count bound removed before expiry.
 *
 * Bounds (README "Limits"): ERASED_LIMITS. An entry lives until its expiry, the erasure
 * time plus the audit retention (policy §8: audit trails 24 months); readers ignore an
 * expired entry and prunes (ingest's once-a-second refresh, each erasure, each scan) remove
 * it. Beyond a count bound, the entries expiring soonest go first, counted in erasedDropped
 * and reported by the scanner and the erasure status: never silently.
 */
import { createHmac, randomBytes } from 'node:crypto';
import type { ChainableCommander, Redis } from 'ioredis';
import type { RedisKeys } from '../schemas/queues.js';

export const ERASED_LIMITS = {
  /** Erased accounts remembered (120 bytes of Redis each, measured: 12 MB at the bound). */
  accounts: 100_000,
  /** Other erased identifiers remembered (resource ids; 120 bytes each: 30 MB at the bound). */
  identifiers: 250_000,
  /** Resource ids fingerprinted per erasure; the rest are counted in the status as omitted. */
  identifiersPerErasure: 10_000,
} as const;

/** How long fingerprints are kept when the caller does not say: the policy's audit retention. */
export const DEFAULT_FINGERPRINT_MONTHS = 24;

export type FingerprintKey = Buffer;

export function fingerprint(key: FingerprintKey, id: string): string {
  return createHmac('sha256', key).update(id, 'utf8').digest().subarray(0, 16).toString('base64url');
}

/** The installation's key, created if this is the first erasure. One round trip. */
export async function ensureFingerprintKey(redis: Redis, keys: RedisKeys): Promise<FingerprintKey> {
  const res = await redis.multi().set(keys.erasedKey, randomBytes(32).toString('hex'), 'NX').get(keys.erasedKey).exec();
  const hex = res?.[1]?.[1];
  if (typeof hex !== 'string') throw new Error('the erased-identifier key could not be read back from Redis');
  return Buffer.from(hex, 'hex');
}

export function parseFingerprintKey(hex: string | null | undefined): FingerprintKey | undefined {
  return typeof hex === 'string' && /^[0-9a-f]{64}$/.test(hex) ? Buffer.from(hex, 'hex') : undefined;
}

export async function readFingerprintKey(redis: Redis, keys: RedisKeys): Promise<FingerprintKey | undefined> {
  return parseFingerprintKey(await redis.get(keys.erasedKey));
}

/** Adds the expired-entry prune of both lists to a pipeline or MULTI. */
export function queuePrune(chain: ChainableCommander, keys: RedisKeys, nowMs: number): ChainableCommander {
  return chain.zremrangebyscore(keys.erasedAccounts, '-inf', `(${nowMs}`).zremrangebyscore(keys.erasedIdentifiers, '-inf', `(${nowMs}`);
}

/**
 * Adds the account's fingerprint to a MULTI (the erasure's last step), then the count bound:
 * beyond it the entries expiring soonest are popped and counted. Returns the chain.
 */
export function queueErasedAccount(chain: ChainableCommander, keys: RedisKeys, fp: string, expiresAtMs: number): ChainableCommander {
  return chain.zadd(keys.erasedAccounts, expiresAtMs, fp);
}

/**
 * Records identifiers an erasure is about to remove (resource ids), at most
 * ERASED_LIMITS.identifiersPerErasure of them. Returns how many were recorded, how many
 * were omitted by the per-erasure bound and how many older entries the total bound dropped.
 */
export async function recordErasedIdentifiers(
  redis: Redis,
  keys: RedisKeys,
  key: FingerprintKey,
  ids: Iterable<string>,
  expiresAtMs: number,
): Promise<{ recorded: number; omitted: number; dropped: number }> {
  const fps = new Set<string>();
  let omitted = 0;
  for (const id of ids) {
    if (id === '') continue;
    if (fps.size < ERASED_LIMITS.identifiersPerErasure) fps.add(fingerprint(key, id));
    else omitted++;
  }
  const list = [...fps];
  for (let i = 0; i < list.length; i += 1000) {
    const args = list.slice(i, i + 1000).flatMap((fp) => [expiresAtMs, fp]);
    await redis.zadd(keys.erasedIdentifiers, ...args);
  }
  const dropped = await trimTo(redis, keys, keys.erasedIdentifiers, ERASED_LIMITS.identifiers);
  return { recorded: list.length, omitted, dropped };
}

/** Pops the entries expiring soonest beyond `max`, counting them in erasedDropped. */
export async function trimTo(redis: Redis, keys: RedisKeys, zset: string, max: number): Promise<number> {
  const size = await redis.zcard(zset);
  if (size <= max) return 0;
  const popped = await redis.zpopmin(zset, size - max);
  const n = popped.length / 2;
  if (n > 0) await redis.incrby(keys.erasedDropped, n);
  return n;
}

/**
 * Which of `accounts` are erased (fingerprint listed and not expired), with the expiry of
 * each. One ZMSCORE: the ingest hot path's only extra round trip, bounded by the batch's
 * distinct accounts (≤ MAX_BATCH_ITEMS).
 */
export async function erasedAccountsAmong(redis: Redis, keys: RedisKeys, key: FingerprintKey, accounts: readonly string[], nowMs: number, cache?: FingerprintCache): Promise<Map<string, number>> {
  const found = new Map<string, number>();
  if (accounts.length === 0) return found;
  const fps = accounts.map((a) => (cache ? cache.of(key, a) : fingerprint(key, a)));
  const scores = await redis.zmscore(keys.erasedAccounts, ...fps);
  scores.forEach((score, i) => {
    if (score !== null && Number(score) > nowMs) found.set(accounts[i]!, Number(score));
  });
  return found;
}

/** A bounded memo of fingerprints (an HMAC costs a few microseconds; batches repeat accounts). */
export class FingerprintCache {
  private readonly memo = new Map<string, string>();
  constructor(private readonly max = 50_000) {}
  of(key: FingerprintKey, id: string): string {
    let fp = this.memo.get(id);
    if (fp === undefined) {
      if (this.memo.size >= this.max) this.memo.clear();
      fp = fingerprint(key, id);
      this.memo.set(id, fp);
    }
    return fp;
  }
}

/**
 * Takes an account off the erased list (a privacy-role decision: the customer is back).
 * Returns the expiry it had, or undefined when it was not listed (or had expired).
 */
export async function reinstateAccount(redis: Redis, keys: RedisKeys, account: string, nowMs: number): Promise<number | undefined> {
  const key = await readFingerprintKey(redis, keys);
  if (!key) return undefined;
  const fp = fingerprint(key, account);
  const res = await redis.multi().zscore(keys.erasedAccounts, fp).zrem(keys.erasedAccounts, fp).exec();
  const score = res?.[0]?.[1];
  return score !== null && score !== undefined && Number(score) > nowMs ? Number(score) : undefined;
}

export interface ErasedListCounts {
  accounts: number;
  identifiers: number;
  /** Removed before their expiry by the count bound, since the list began. */
  dropped: number;
  /** Whether the installation has a key at all (no erasure has ever finished without one). */
  keyed: boolean;
}

/**
 * What the scanner compares against: looks tokens up in both lists. Built once per scan;
 * lookups go in pipelines of 1,000 ZMSCOREs, so memory stays bounded by the caller's batch.
 */
export class ErasedFingerprints {
  private constructor(
    private readonly redis: Redis,
    private readonly keys: RedisKeys,
    private readonly key: FingerprintKey | undefined,
    private readonly nowMs: number,
    readonly counts: ErasedListCounts,
  ) {}

  static async open(redis: Redis, keys: RedisKeys, nowMs = Date.now()): Promise<ErasedFingerprints> {
    const res = await queuePrune(redis.multi(), keys, nowMs)
      .get(keys.erasedKey)
      .zcard(keys.erasedAccounts)
      .zcard(keys.erasedIdentifiers)
      .get(keys.erasedDropped)
      .exec();
    const value = (i: number) => res?.[i]?.[1];
    const key = parseFingerprintKey(value(2) as string | null);
    return new ErasedFingerprints(redis, keys, key, nowMs, {
      keyed: key !== undefined,
      accounts: Number(value(3) ?? 0),
      identifiers: Number(value(4) ?? 0),
      dropped: Number(value(5) ?? 0),
    });
  }

  /** Tokens that are an erased account or identifier, with which kind. */
  async lookup(tokens: readonly string[]): Promise<Map<string, 'account' | 'identifier'>> {
    const found = new Map<string, 'account' | 'identifier'>();
    if (!this.key || this.counts.accounts + this.counts.identifiers === 0) return found;
    const unique = [...new Set(tokens)].filter((t) => t !== '');
    for (let i = 0; i < unique.length; i += 1000) {
      const run = unique.slice(i, i + 1000);
      const fps = run.map((t) => fingerprint(this.key!, t));
      const res = await this.redis.pipeline().zmscore(this.keys.erasedAccounts, ...fps).zmscore(this.keys.erasedIdentifiers, ...fps).exec();
      const accounts = (res?.[0]?.[1] ?? []) as (string | null)[];
      const identifiers = (res?.[1]?.[1] ?? []) as (string | null)[];
      run.forEach((t, j) => {
        if (accounts[j] != null && Number(accounts[j]) > this.nowMs) found.set(t, 'account');
        else if (identifiers[j] != null && Number(identifiers[j]) > this.nowMs) found.set(t, 'identifier');
      });
    }
    return found;
  }
}
