/**
 * Account ids in URL paths: one rule with ingest (schemas/sample.ts accountIdSchema). An
 * account ingest accepted, at the longest length and in multi-byte characters, can be
 * read, exported, terminated and erased; an id ingest would refuse (too long, a control
 * character) is refused on every per-account route with 400, and nothing is written.
 * Terminating again never postpones the erasure deadline.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../../lib/clickhouse.js';
import { accountState, addMonthsUtc, lifecycleVersion, terminateAccount } from '../../domain/accounts.js';
import { LIMITS } from '../../schemas/sample.js';
import { KEYS, startTestPipeline, type TestPipeline } from '../support/pipeline.js';

const HOUR = 3_600_000;
// Ingest counts characters as code points. 128 four-byte characters is the longest id
// there is once percent-encoded (1536 characters); a mixed one checks nothing is lost.
const LONG = '😀'.repeat(64) + '€'.repeat(63) + 'é';
const LONGEST = '😀'.repeat(128);
const TOO_LONG = 'é'.repeat(129);
const chars = (s: string) => [...s].length;

interface Call {
  status: number;
  body: any;
}

describe('account ids in paths', () => {
  let p: TestPipeline;

  const call = async (method: string, path: string, key: string): Promise<Call> => {
    const res = await fetch(`${p.url}${path}`, { method, headers: { authorization: `Bearer ${key}` } });
    const text = await res.text();
    return { status: res.status, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
  };
  const count = async (sql: string, params: Record<string, unknown> = {}) => Number((await queryRows<{ n: string }>(p.ch!, sql, params))[0]!.n);
  /** Every route that names an account, with the role allowed to call it. */
  const routes = (encoded: string): [string, string, string][] => [
    ['GET', `/v1/accounts/${encoded}/usage`, KEYS.billing],
    ['GET', `/v1/accounts/${encoded}/coverage`, KEYS.billing],
    ['GET', `/v1/accounts/${encoded}/export`, KEYS.privacy],
    ['POST', `/v1/accounts/${encoded}/terminate`, KEYS.privacy],
    ['DELETE', `/v1/accounts/${encoded}`, KEYS.privacy],
  ];

  beforeAll(async () => {
    // Retention after termination is 12 months: the sweep must not erase anything here.
    p = await startTestPipeline('account-paths', { ACCOUNT_RETENTION_MONTHS: '12' });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('reads, exports, terminates and erases an account of 128 multi-byte characters', async () => {
    expect(chars(LONG)).toBe(LIMITS.accountIdLength);
    const ts = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
    const sample = { id: 'long-1', account_id: LONG, resource_id: 'vm-1', resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 7.5, ts, interval_s: 60 };
    const ingest = await p.post([sample]);
    expect(ingest.status).toBe(202);
    expect(ingest.body.accepted).toBe(1);
    await p.waitIdle();

    const enc = encodeURIComponent(LONG);
    const usage = await call('GET', `/v1/accounts/${enc}/usage?from=${ts - HOUR}&to=${ts + HOUR}`, KEYS.billing);
    expect(usage.status).toBe(200);
    expect(usage.body.account).toBe(LONG);
    expect(usage.body.rows).toEqual([expect.objectContaining({ metric: 'cpu', base_total: '7.5' })]);

    const coverage = await call('GET', `/v1/accounts/${enc}/coverage`, KEYS.billing);
    expect(coverage.status).toBe(200);

    const exported = await call('GET', `/v1/accounts/${enc}/export`, KEYS.privacy);
    expect(exported.status).toBe(200);
    expect(exported.body.account).toBe(LONG);
    expect(exported.body.samples).toHaveLength(1);

    const terminated = await call('POST', `/v1/accounts/${enc}/terminate`, KEYS.privacy);
    expect(terminated.status).toBe(200);
    expect(terminated.body).toMatchObject({ account_id: LONG, status: 'terminated', already_terminated: false, deadline: 'set' });

    const erased = await call('DELETE', `/v1/accounts/${enc}`, KEYS.privacy);
    expect(erased.status).toBe(202);
    let status = '';
    for (let i = 0; i < 200 && status !== 'done'; i++) {
      status = (await call('GET', erased.body.status_url, KEYS.privacy)).body.status;
      if (status !== 'done') await sleep(100);
    }
    expect(status).toBe('done');
    expect(await count('SELECT count() AS n FROM billing.usage_hourly WHERE account_id = {a:String}', { a: LONG })).toBe(0);
    expect(await count('SELECT count() AS n FROM billing.samples_raw WHERE account_id = {a:String}', { a: LONG })).toBe(0);
  });

  it('routes the longest id there is: 128 four-byte characters', async () => {
    expect(chars(LONGEST)).toBe(LIMITS.accountIdLength);
    expect(encodeURIComponent(LONGEST)).toHaveLength(1536);
    for (const [method, path, key] of routes(encodeURIComponent(LONGEST)).filter(([m]) => m === 'GET')) {
      expect((await call(method, path, key)).status, `${method} ${path}`).toBe(200);
    }
  });

  it('answers a path segment far beyond any id with 414 and the error shape', async () => {
    const res = await call('GET', `/v1/accounts/${'a'.repeat(3000)}/usage`, KEYS.billing);
    expect(res.status).toBe(414);
    expect(res.body).toEqual({ error: { code: 'uri_too_long', message: expect.stringMatching(/longer than 2048/) } });
  });

  it('refuses 129 characters, a NUL, a lone surrogate and other control characters on every per-account route, writing nothing', async () => {
    const erasureRequests = async () => (await p.redis.client.keys(p.redisKeys.erasureRequest('*'))).length;
    const erasuresBefore = await erasureRequests();
    const accountsBefore = await count('SELECT count() AS n FROM billing.accounts');
    const bad: [string, RegExp][] = [
      [encodeURIComponent(TOO_LONG), /at most 128 characters/],
      [encodeURIComponent(LONGEST + 'x'), /at most 128 characters/],
      ['a%00b', /control characters/],
      ['a%0Ab', /control characters/],
      ['a%1Bb', /control characters/],
      ['a%E2%80%8Eb', /control characters/], // U+200E, a format character
      ['a%ED%A0%80b', /not valid percent-encoded UTF-8/], // a lone surrogate, as CESU-8: not UTF-8 at all
      ['a%FFb', /not valid percent-encoded UTF-8/],
      ['a%2', /not valid percent-encoded UTF-8/],
    ];
    for (const [encoded, message] of bad) {
      for (const [method, path, key] of routes(encoded)) {
        const res = await call(method, path, key);
        expect(res.status, `${method} ${path}`).toBe(400);
        expect(res.body.error, `${method} ${path}`).toEqual({ code: expect.any(String), message: expect.stringMatching(message) });
      }
    }
    expect(await count('SELECT count() AS n FROM billing.accounts')).toBe(accountsBefore);
    expect(await erasureRequests()).toBe(erasuresBefore);
  });

  it('keeps the earlier erasure deadline when an account is terminated again', async () => {
    const first = await call('POST', '/v1/accounts/acct-again/terminate', KEYS.privacy);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ status: 'terminated', already_terminated: false, deadline: 'set' });
    await sleep(20); // a later "now": the old code restarted the clock from it
    const second = await call('POST', '/v1/accounts/acct-again/terminate', KEYS.privacy);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({
      status: 'terminated',
      already_terminated: true,
      deadline: 'kept',
      terminated_at: first.body.terminated_at,
      delete_after: first.body.delete_after,
      message: expect.stringMatching(/stands/),
    });
    // What the sweep and the export read agrees.
    const state = await queryRows<{ d: string }>(p.ch!, "SELECT toString(delete_after) AS d FROM billing.accounts FINAL WHERE account_id = 'acct-again'");
    expect(Date.parse(`${state[0]!.d.replace(' ', 'T')}Z`)).toBe(Date.parse(first.body.delete_after));
  });

  it('moves a deadline earlier (a shorter retention) but never later, whatever order writes land in', async () => {
    const now = Date.now();
    const first = await terminateAccount(p.ch!, 'acct-order', now, 12);
    expect(first.deadline).toBe('set');
    const shorter = await terminateAccount(p.ch!, 'acct-order', now + 1000, 6);
    expect(shorter).toMatchObject({ deadline: 'set', already_terminated: true, terminated_at: first.terminated_at });
    expect(Date.parse(shorter.delete_after!)).toBe(addMonthsUtc(now + 1000, 6));
    // A racing writer that read the old state and writes a later deadline after it: the
    // version derived from the deadline keeps the earlier one in the table.
    const later = addMonthsUtc(now + 2000, 12);
    await p.ch!.insert({
      table: 'billing.accounts',
      format: 'JSONEachRow',
      values: [{ account_id: 'acct-order', status: 'terminated', terminated_at: now + 2000, delete_after: later, version: lifecycleVersion(later) }],
    });
    const state = await accountState(p.ch!, 'acct-order');
    expect(Date.parse(`${state.delete_after!.replace(' ', 'T')}Z`)).toBe(addMonthsUtc(now + 1000, 6));
  });
});
