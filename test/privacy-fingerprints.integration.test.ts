/**
 * The erased-identifier list on a real Redis: one-way fingerprints (no id stored), its
 * bounds (per erasure, in total: the soonest-expiring go first and are counted), expiry
 * (ignored at once, pruned by ingest's refresh), reinstatement, and ingest's check costing
 * one ZMSCORE per batch and nothing before the first erasure.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BatchAcceptor } from '../ingest/accept.js';
import {
  ensureFingerprintKey,
  ERASED_LIMITS,
  ErasedFingerprints,
  erasedAccountsAmong,
  fingerprint,
  readFingerprintKey,
  recordErasedIdentifiers,
  reinstateAccount,
  trimTo,
} from '../domain/erased-identifiers.js';
import { erasureView } from '../domain/erasure-requests.js';
import { redisKeys } from '../schemas/queues.js';
import { createBatchQueue } from '../workers/queues.js';
import { deleteKeys, uniquePrefix } from './support/pipeline.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const HOUR = 3_600_000;

describe('erased-identifier fingerprints', () => {
  const prefix = uniquePrefix('fingerprints');
  const keys = redisKeys(prefix);
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(REDIS_URL);
  });
  afterAll(async () => {
    redis.disconnect();
    await deleteKeys(REDIS_URL, prefix);
  });

  it('keeps one installation key and stores fingerprints, never ids', async () => {
    expect(await readFingerprintKey(redis, keys)).toBeUndefined();
    const key = await ensureFingerprintKey(redis, keys);
    expect(key).toHaveLength(32);
    expect((await ensureFingerprintKey(redis, keys)).equals(key)).toBe(true); // SET NX: made once
    const fp = fingerprint(key, 'vm-secret-1');
    expect(fp).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(fingerprint(Buffer.alloc(32, 1), 'vm-secret-1')).not.toBe(fp); // keyed: a list alone tests no guess
    const r = await recordErasedIdentifiers(redis, keys, key, ['vm-secret-1', 'vm-secret-2', ''], Date.now() + HOUR);
    expect(r).toEqual({ recorded: 2, omitted: 0, dropped: 0 });
    const stored = (await redis.zrange(keys.erasedIdentifiers, '0', '-1')).join(' ');
    expect(stored).toContain(fp);
    expect(stored).not.toContain('secret');
    const list = await ErasedFingerprints.open(redis, keys);
    expect(list.counts).toEqual({ keyed: true, accounts: 0, identifiers: 2, dropped: 0 });
    expect(await list.lookup(['vm-secret-2', 'vm-other', 'vm-secret-1'])).toEqual(new Map([['vm-secret-2', 'identifier'], ['vm-secret-1', 'identifier']]));
  });

  it('bounds what one erasure records, and the whole list, dropping the soonest-expiring and counting them', async () => {
    const key = await ensureFingerprintKey(redis, keys);
    const ids = Array.from({ length: ERASED_LIMITS.identifiersPerErasure + 5 }, (_, i) => `vm-bulk-${i}`);
    const r = await recordErasedIdentifiers(redis, keys, key, ids, Date.now() + 2 * HOUR);
    expect(r).toMatchObject({ recorded: ERASED_LIMITS.identifiersPerErasure, omitted: 5 });
    const size = await redis.zcard(keys.erasedIdentifiers);
    expect(size).toBe(ERASED_LIMITS.identifiersPerErasure + 2);
    // The total bound (trimTo is what recordErasedIdentifiers applies with ERASED_LIMITS.identifiers).
    expect(await trimTo(redis, keys, keys.erasedIdentifiers, size - 2)).toBe(2);
    const list = await ErasedFingerprints.open(redis, keys);
    expect(list.counts.dropped).toBe(2);
    // The two popped were those expiring first: vm-secret-1 and -2 (one hour, the bulk two).
    expect(await list.lookup(['vm-secret-1', 'vm-secret-2', 'vm-bulk-0'])).toEqual(new Map([['vm-bulk-0', 'identifier']]));
    await redis.del(keys.erasedIdentifiers, keys.erasedDropped);
  });

  it('ignores an expired fingerprint at once and prunes it on ingest\'s refresh; reinstatement takes an account off', async () => {
    const key = await ensureFingerprintKey(redis, keys);
    const now = Date.now();
    await redis.zadd(keys.erasedAccounts, now - 1, fingerprint(key, 'acct-old'), now + HOUR, fingerprint(key, 'acct-gone'));
    const erased = await erasedAccountsAmong(redis, keys, key, ['acct-old', 'acct-gone', 'acct-live'], now);
    expect(erased).toEqual(new Map([['acct-gone', now + HOUR]]));
    const view = await erasureView(redis, keys, now);
    expect(view.fingerprintKey!.equals(key)).toBe(true);
    expect(await redis.zscore(keys.erasedAccounts, fingerprint(key, 'acct-old'))).toBeNull(); // pruned
    expect(await reinstateAccount(redis, keys, 'acct-gone', now)).toBe(now + HOUR);
    expect(await reinstateAccount(redis, keys, 'acct-gone', now)).toBeUndefined();
    expect(await redis.zcard(keys.erasedAccounts)).toBe(0);
  });
});

describe('ingest\'s erased-account check', () => {
  const prefix = uniquePrefix('erased-ingest');
  const keys = redisKeys(prefix);
  let redis: Redis;
  let queue: ReturnType<typeof createBatchQueue>;
  let queueConnection: Redis;
  const sent: string[] = [];
  beforeAll(() => {
    redis = new Redis(REDIS_URL);
    // Observe (not replace) what the acceptor's client sends.
    const send = redis.sendCommand.bind(redis);
    redis.sendCommand = ((cmd: { name: string }) => {
      sent.push(cmd.name);
      return send(cmd as never);
    }) as typeof redis.sendCommand;
    queueConnection = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    queue = createBatchQueue({ connection: queueConnection, prefix: keys.bullPrefix, attempts: 1 });
  });
  afterAll(async () => {
    await queue.close();
    queueConnection.disconnect();
    redis.disconnect();
    await deleteKeys(REDIS_URL, prefix);
  });

  const item = (account: string, i: number) => ({
    id: `s-${account}-${i}`, account_id: account, resource_id: 'vm-1', resource_type: 'vm', region: 'eu-west-1',
    metric: 'cpu', value: 1, ts: Date.now() - 60_000, interval_s: 60,
  });

  it('costs nothing before the first erasure and one ZMSCORE per batch after it, refusing by code', async () => {
    const acceptor = new BatchAcceptor({ redis, queue, keys, maxBatchItems: 10_000, maxQueuedBatches: 1000, rawRetentionDays: 90 });
    let t = Date.now();
    sent.length = 0;
    expect((await acceptor.accept([item('acct-a', 1)], t)).accepted).toBe(1);
    expect(sent.filter((c) => c === 'zmscore')).toEqual([]); // no key yet: no erasure ever finished

    const key = await ensureFingerprintKey(redis, keys);
    await redis.zadd(keys.erasedAccounts, Date.now() + HOUR, fingerprint(key, 'acct-erased'));
    t += 1001; // the view (and with it the key) is read again after a second
    sent.length = 0;
    // A batch of 2,000 items over 1,000 accounts, one of them erased.
    const items = Array.from({ length: 2000 }, (_, i) => item(i % 1000 === 7 ? 'acct-erased' : `acct-${i % 1000}`, i));
    const result = await acceptor.accept(items, t);
    expect(sent.filter((c) => c === 'zmscore')).toEqual(['zmscore']);
    expect(result.accepted).toBe(1998);
    expect(result.rejected.map((r) => [r.index, r.code])).toEqual([[7, 'account_erased'], [1007, 'account_erased']]);
    sent.length = 0;
    await acceptor.accept([item('acct-b', 1)], t + 10); // within the second: the cached key, still one ZMSCORE
    expect(sent.filter((c) => c === 'zmscore')).toEqual(['zmscore']);
    expect(sent.filter((c) => c === 'smembers' || c === 'get')).toEqual([]);
  });
});
