/**
 * Issue 11, bounded by key: a key over its rate gets 429 + Retry-After while another key
 * is unaffected (counters in Redis under KEY_PREFIX, expiring with their window), and a
 * Redis outage answers 503 + Retry-After, never a 500 and never a silently open limiter.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from 'node:net';
import { isRedisUnavailable } from '../../lib/redis-unavailable.js';
import { RedisServer, freePort } from '../faults/support/processes.js';
import { KEYS, startTestPipeline, type TestPipeline } from '../support/pipeline.js';

const OTHER_PRODUCER = 'other-producer-secret-0001';
const OTHER_PLANNER = 'other-planner-secret-00001';
const API_KEYS = [
  ...Object.entries(KEYS).map(([role, secret]) => `${role}:${role}-test:${secret}`),
  `producer:producer-other:${OTHER_PRODUCER}`,
  `planner:planner-other:${OTHER_PLANNER}`,
].join(',');

const HOUR = 3_600_000;
const ts = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
const sample = (id: string) => ({ id, account_id: 'acct-rl', resource_id: 'vm-1', resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 1, ts, interval_s: 60 });

async function post(url: string, key: string, body: unknown = [sample(`s-${Math.random()}`)]) {
  const res = await fetch(`${url}/v1/samples`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { error?: { code: string; message: string } } };
}

async function analytics(url: string, key: string) {
  const res = await fetch(`${url}/v1/analytics/queries`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: (await res.json()) as { error?: { code: string; message: string } } };
}

describe('per-key rate limits', () => {
  let p: TestPipeline;
  let probe: Redis;
  beforeAll(async () => {
    p = await startTestPipeline('ratelimit', { API_KEYS, INGEST_REQUESTS_PER_S: '5', ANALYTICS_REQUESTS_PER_MIN: '3' });
    probe = new Redis(p.config.REDIS_URL ?? 'redis://127.0.0.1:6379');
  });
  afterAll(async () => {
    probe?.disconnect();
    await p?.stop();
  });

  it('ingest: a key over its requests per second gets 429 + Retry-After; another key does not', async () => {
    // 20 at once: whatever the 1-second windows' boundaries, at most 10 pass.
    const [flood, other] = await Promise.all([
      Promise.all(Array.from({ length: 20 }, () => post(p.url, KEYS.producer, []))),
      Promise.all(Array.from({ length: 4 }, () => post(p.url, OTHER_PRODUCER, []))),
    ]);
    const limited = flood.filter((r) => r.status === 429);
    expect(limited.length).toBeGreaterThanOrEqual(10);
    // The others got the route's own answer: the limit comes before the body is looked at.
    expect(flood.filter((r) => r.status !== 429).every((r) => r.body.error?.code === 'empty_batch')).toBe(true);
    for (const r of limited) {
      expect(r.body.error?.code).toBe('rate_limited');
      expect(r.body.error?.message).toContain('key producer-test may make 5 ingest requests per second');
      expect(r.body.error?.message).not.toContain(KEYS.producer); // keyed by id, never the secret
      expect(Number(r.retryAfter)).toBe(1);
    }
    expect(other.map((r) => r.status)).toEqual([400, 400, 400, 400]);
    // The counter lives under the prefix and expires with its window.
    const counter = `${p.config.KEY_PREFIX}:rate-limit:ingest:producer-test`;
    const ttl = await probe.pttl(counter);
    expect(ttl === -2 || (ttl > 0 && ttl <= 1000)).toBe(true); // gone already, or expiring within the second
    await sleep(1100);
    expect((await post(p.url, KEYS.producer)).status).toBe(202); // a new window
  });

  it('a request without a valid key is answered 401, not counted against anyone', async () => {
    const answers = await Promise.all(Array.from({ length: 12 }, () => post(p.url, 'not-a-key-at-all-000000', [])));
    expect(answers.every((r) => r.status === 401)).toBe(true);
  });

  it('analytics: a key over its requests per minute gets 429 + Retry-After; another key does not', async () => {
    const mine = [];
    for (let i = 0; i < 4; i++) mine.push(await analytics(p.url, KEYS.planner));
    expect(mine.slice(0, 3).map((r) => r.status)).toEqual([200, 200, 200]);
    expect(mine[3]!.status).toBe(429);
    expect(mine[3]!.body.error?.code).toBe('rate_limited');
    expect(mine[3]!.body.error?.message).toContain('key planner-test may make 3 analytics requests per minute');
    expect(Number(mine[3]!.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(Number(mine[3]!.retryAfter)).toBeLessThanOrEqual(60);
    expect((await analytics(p.url, OTHER_PLANNER)).status).toBe(200);
    expect(await probe.pttl(`${p.config.KEY_PREFIX}:rate-limit:analytics:planner-test`)).toBeGreaterThan(0);
  });
});

describe('Redis unavailable', () => {
  let server: RedisServer | undefined;
  const pipelines: TestPipeline[] = [];
  afterAll(async () => {
    await server?.restart().catch(() => undefined); // so stop() can clean its keys
    for (const p of pipelines) await p.stop().catch(() => undefined);
    await server?.stop();
  });

  it('ingest answers 503 + Retry-After while Redis is down (limiter on or off), and 202 once it is back', async () => {
    server = new RedisServer(await freePort(), 'everysec');
    await server.start();
    // Ingest only: it needs Redis, not ClickHouse, so two can run in one process.
    for (const limit of ['500', '0']) {
      pipelines.push(await startTestPipeline(`redisdown-${limit}`, { REDIS_URL: server.url, ROLE: 'ingest', INGEST_REQUESTS_PER_S: limit, LOG_LEVEL: 'silent' }));
    }
    for (const p of pipelines) expect((await post(p.url, KEYS.producer)).status).toBe(202);

    await server.kill9();
    await sleep(300); // the connections notice the closed socket
    for (const [i, p] of pipelines.entries()) {
      for (let attempt = 0; attempt < 3; attempt++) {
        const started = Date.now();
        const r = await post(p.url, KEYS.producer);
        const ms = Date.now() - started;
        console.log(`Redis down, limiter ${i === 0 ? 'on' : 'off'}: ${r.status} ${r.body.error?.code} Retry-After ${r.retryAfter} in ${ms} ms`);
        expect(r.status).toBe(503);
        expect(r.body.error?.code).toBe('redis_unavailable');
        expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
        expect(ms).toBeLessThan(5000); // answered, not held until Redis returns
      }
    }

    await server.restart();
    for (const p of pipelines) {
      const deadline = Date.now() + 15_000;
      let status = 0;
      while (status !== 202 && Date.now() < deadline) {
        status = (await post(p.url, KEYS.producer)).status;
        if (status !== 202) await sleep(200);
      }
      expect(status).toBe(202);
    }
  });

  it('tells a dead Redis by error class and code, not by message text', async () => {
    const port = await freePort();
    const client = new Redis({ host: '127.0.0.1', port, maxRetriesPerRequest: 1, retryStrategy: () => 50 });
    client.on('error', () => undefined);
    const gaveUp = await client.get('x').catch((e: unknown) => e);
    client.disconnect();
    expect((gaveUp as Error).name).toBe('MaxRetriesPerRequestError');
    expect(isRedisUnavailable(gaveUp)).toBe(true);
    const refused = await new Promise<unknown>((resolve) => connect(port, '127.0.0.1').once('error', resolve));
    expect(isRedisUnavailable(refused)).toBe(true); // ECONNREFUSED
    expect(isRedisUnavailable(new Error('Redis connection is down'))).toBe(false);
  });
});
