/**
 * API_MAX_IN_FLIGHT (app/api-in-flight.ts): billing and privacy requests in progress in one
 * process are bounded; beyond the bound the answer is 503 `api_busy` with Retry-After at
 * once, never a stall or a 5xx of another kind. Ingest is not counted. A request whose
 * client leaves gives its place back.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
const MAX = 4;

describe('billing and privacy requests in progress, bounded', () => {
  let p: TestPipeline;
  const end = Math.floor(Date.now() / HOUR) * HOUR + HOUR;
  const usageUrl = () => `${p.url}/v1/accounts/acct-inflight/usage?from=${end - 3 * HOUR}&to=${end}`;
  const usage = (signal?: AbortSignal) => fetch(usageUrl(), { headers: { authorization: `Bearer ${KEYS.billing}` }, ...(signal ? { signal } : {}) });

  beforeAll(async () => {
    p = await startTestPipeline('inflight', { API_MAX_IN_FLIGHT: String(MAX) });
    const res = await p.post([{ id: 'if-1', account_id: 'acct-inflight', resource_id: 'vm-1', resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 2.25, ts: end - 2 * HOUR + 60_000, interval_s: 60 }]);
    expect(res.status).toBe(202);
    await p.waitIdle();
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('answers a burst with 200s and 503 api_busy + Retry-After, and keeps ingesting meanwhile', async () => {
    const burst = Array.from({ length: 60 }, () => usage());
    const ingest = p.post([{ id: 'if-2', account_id: 'acct-inflight-2', resource_id: 'vm-2', resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 1, ts: end - 2 * HOUR + 120_000, interval_s: 60 }]);
    const answers = await Promise.all(burst.map(async (r) => {
      const res = await r;
      return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as any };
    }));
    expect((await ingest).status).toBe(202);
    const statuses = new Set(answers.map((a) => a.status));
    expect([...statuses].sort()).toEqual([200, 503]);
    const ok = answers.filter((a) => a.status === 200);
    const busy = answers.filter((a) => a.status === 503);
    expect(ok.length).toBeGreaterThanOrEqual(MAX);
    for (const a of ok) expect(a.body.rows.find((r: { metric: string }) => r.metric === 'cpu').base_total).toBe('2.25');
    for (const a of busy) {
      expect(a.retryAfter).toBe('1');
      expect(a.body.error.code).toBe('api_busy');
      expect(a.body.error.message).toContain(`${MAX} billing and privacy requests in progress (API_MAX_IN_FLIGHT)`);
    }
  });

  it('gives every place back, including those of clients that left mid-request', async () => {
    const leaving = Array.from({ length: 10 }, () => {
      const ac = new AbortController();
      const r = usage(ac.signal).catch(() => undefined);
      setTimeout(() => ac.abort(), 1);
      return r;
    });
    await Promise.all(leaving);
    await new Promise((r) => setTimeout(r, 500)); // the server sees the closed sockets
    // MAX at once, three times over: none is refused, so no place was kept by a request that ended.
    for (let round = 0; round < 3; round++) {
      const statuses = await Promise.all(Array.from({ length: MAX }, async () => (await usage()).status));
      expect(statuses).toEqual(Array(MAX).fill(200));
    }
  });
});
