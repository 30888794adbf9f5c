/**
 * The HTTP contract around ingest and the usage API: keys and roles, size limits,
 * back-pressure, error shapes. The back-pressure case runs an ingest-only process (no
 * worker) so the backlog really grows.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

const sample = (i: number) => ({
  id: `http-${i}`,
  account_id: 'acct-http',
  resource_id: 'vm-http',
  resource_type: 'vm',
  region: 'eu-west-1',
  metric: 'cpu',
  value: 1,
  ts: Date.now() - 60_000 - i,
  interval_s: 60,
});

describe('keys and roles', () => {
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline('http', { MAX_BATCH_ITEMS: '50', MAX_BODY_BYTES: '20000' });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('refuses ingest without a key, with a wrong key, and with a key of another role', async () => {
    expect((await p.post([sample(1)], { key: '' })).status).toBe(401);
    const wrong = await p.post([sample(1)], { key: 'not-a-real-key-at-all' });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ error: { code: 'unauthorized', message: 'a valid API key is required: Authorization: Bearer <key>' } });
    const otherRole = await p.post([sample(1)], { key: KEYS.billing });
    expect(otherRole.status).toBe(403);
    expect(otherRole.body.error.message).toBe("this endpoint needs a producer key; this key's role is billing");
  });

  it('refuses the usage API without a key, with a wrong key, and with a producer key', async () => {
    const path = '/v1/accounts/acct-http/usage';
    expect((await p.get(path, '')).status).toBe(401);
    expect((await p.get(path, 'wrong-key-wrong-key')).status).toBe(401);
    expect((await p.get(path, KEYS.producer)).status).toBe(403);
    expect((await p.get(path, KEYS.planner)).status).toBe(403);
    expect((await p.get(path, KEYS.billing)).status).toBe(200);
  });

  it('answers 413 over the item limit and over the body limit', async () => {
    const tooMany = await p.post(Array.from({ length: 51 }, (_, i) => sample(i)));
    expect(tooMany.status).toBe(413);
    expect(tooMany.body.error).toEqual({ code: 'batch_too_large', message: 'a batch may hold at most 50 samples; this one has 51' });
    const tooBig = await p.post([{ ...sample(1), account_id: 'a'.repeat(30_000) }]);
    expect(tooBig.status).toBe(413);
    expect(tooBig.body.error.code).toBe('body_too_large');
  });

  it('answers 400 for unreadable bodies and batches with nothing valid', async () => {
    const garbage = await p.post('{"samples": [', { contentType: 'application/json' });
    expect(garbage.status).toBe(400);
    expect(garbage.body.error.code).toBe('bad_request');
    const wrongShape = await p.post({ items: [] });
    expect(wrongShape.body.error.code).toBe('unreadable_body');
    const nothingValid = await p.post([{ nope: true }]);
    expect(nothingValid.status).toBe(400);
    expect(nothingValid.body.error.code).toBe('no_valid_samples');
    expect(nothingValid.body.error.details.rejected[0].index).toBe(0);
    const proto = await p.post('{"__proto__": {"polluted": true}, "samples": []}');
    expect(proto.status).toBe(400);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('rejects bad usage queries with a precise message', async () => {
    const notAligned = await p.get('/v1/accounts/acct-http/usage?from=2026-01-01T00:30:00Z&to=2026-01-02T00:00:00Z');
    expect(notAligned.status).toBe(400);
    expect(notAligned.body.error.message).toBe('from: from must fall on a whole hour: usage is aggregated hourly');
    const badGroup = await p.get('/v1/accounts/acct-http/usage?group_by=metric,customer');
    expect(badGroup.body.error.message).toBe('group_by: group_by accepts metric, resource_id, region; not customer');
    const reversed = await p.get('/v1/accounts/acct-http/usage?from=2026-02-01&to=2026-01-01');
    expect(reversed.body.error.message).toBe('from must be before to');
  });

  it('serves health, readiness and metrics without a key', async () => {
    expect((await p.get('/healthz', '')).body).toEqual({ status: 'ok' });
    expect((await p.get('/readyz', '')).body).toEqual({ status: 'ready', checks: { redis: 'ok', clickhouse: 'ok' } });
    const metrics = await p.get('/metrics', '');
    expect(metrics.body).toMatch(/um_samples_accepted_total \d+/);
    expect(metrics.body).not.toContain(KEYS.producer);
  });
});

describe('back-pressure', () => {
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline('backpressure', { ROLE: 'ingest', MAX_QUEUED_BATCHES: '3' });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('answers 503 with Retry-After once the backlog passes its bound, and keeps what it acknowledged', async () => {
    const statuses: number[] = [];
    let retryAfter: string | null = null;
    for (let i = 0; i < 8; i++) {
      const res = await p.post([sample(i)]);
      statuses.push(res.status);
      if (res.status === 503) retryAfter = res.headers.get('retry-after');
      await new Promise((r) => setTimeout(r, 300)); // past the backlog cache
    }
    expect(statuses.slice(0, 3)).toEqual([202, 202, 202]);
    expect(statuses).toContain(503);
    expect(Number(retryAfter)).toBeGreaterThan(0);
    expect(await p.queue!.getWaitingCount()).toBe(statuses.filter((s) => s === 202).length);
  });
});
