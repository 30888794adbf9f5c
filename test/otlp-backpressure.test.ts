/**
 * OTLP back-pressure, without mocks: an ingest-only pipeline (ROLE=ingest, no engine, no
 * worker) with MAX_QUEUED_BATCHES=1 fills its queue, so the acceptor refuses the next batch.
 * Shown here:
 *  - the export is answered 503 with Retry-After and a google.rpc.Status UNAVAILABLE;
 *  - the cumulative deltas it computed are held (um_otlp_pending_samples > 0), and the
 *    exporter's retry, which the shared state calls stale, neither loses nor copies them;
 *  - once a worker on the same Redis prefix drains the queue, the next export sends the held
 *    window in front of its own, and the bill equals the counters' true increase exactly
 *    (real Redis, real chdb, BigInt from the values as sent).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeResponse, decodeStatus, encodeRequest } from '../ingest/otlp/decode.js';
import { decimalToMicros, toMicros } from './support/oracle.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
const ACCOUNT = 'acct-otlp-bp';
const t0 = Math.floor(Date.now() / 1000) - 600; // seconds, in the past
const ns = (s: number) => `${BigInt(s) * 1_000_000_000n}`;
/** The acceptor reuses its queue count for a quarter second (ingest/accept.ts). */
const BACKLOG_CACHE_MS = 300;

let ingest: TestPipeline;
let engine: TestPipeline | undefined;

beforeAll(async () => {
  ingest = await startTestPipeline('otlp-bp', { ROLE: 'ingest', MAX_QUEUED_BATCHES: '1' });
});
afterAll(async () => {
  await engine?.stop();
  await ingest?.stop();
});

const kv = (attrs: Record<string, string>) => Object.entries(attrs).map(([key, v]) => ({ key, value: { stringValue: v } }));
/** One host's cumulative cpu seconds by mode at time `tS`. */
const reading = (tS: number, user: number, system: number) => ({
  resourceMetrics: [{
    resource: { attributes: kv({ 'cloud.account.id': ACCOUNT, 'host.id': 'h-bp', 'cloud.region': 'eu-west-1' }) },
    scopeMetrics: [{
      scope: { name: 'bp' },
      metrics: [{
        name: 'system.cpu.time',
        unit: 's',
        sum: {
          aggregationTemporality: 2,
          isMonotonic: true,
          dataPoints: [
            { attributes: kv({ 'cpu.mode': 'user' }), startTimeUnixNano: ns(t0 - 3600), timeUnixNano: ns(tS), asDouble: user },
            { attributes: kv({ 'cpu.mode': 'system' }), startTimeUnixNano: ns(t0 - 3600), timeUnixNano: ns(tS), asDouble: system },
          ],
        },
      }],
    }],
  }],
});

async function exportTo(p: TestPipeline, body: Record<string, unknown>) {
  const res = await fetch(`${p.url}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${KEYS.producer}` }, body: Buffer.from(encodeRequest(body)) });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), bytes: Buffer.from(await res.arrayBuffer()) };
}

async function pendingGauge(p: TestPipeline): Promise<number> {
  const text = await (await fetch(`${p.url}/metrics`)).text();
  const m = /^um_otlp_pending_samples (\S+)$/m.exec(text);
  expect(m, 'um_otlp_pending_samples is served').not.toBeNull();
  return Number(m![1]);
}

async function billedCpu(p: TestPipeline): Promise<bigint> {
  await p.waitIdle();
  const from = new Date(Math.floor((t0 * 1000) / HOUR) * HOUR - 2 * HOUR).toISOString();
  const to = new Date(Math.floor(Date.now() / HOUR) * HOUR + HOUR).toISOString();
  const res = await p.get(`/v1/accounts/${ACCOUNT}/usage?from=${from}&to=${to}&granularity=total`);
  expect(res.status).toBe(200);
  const cpu = res.body.rows.find((r: { metric: string }) => r.metric === 'cpu');
  return cpu ? decimalToMicros(cpu.base_total) : 0n;
}

describe('OTLP under back-pressure', () => {
  it('answers 503 + Retry-After, holds the computed deltas, and bills them exactly once the queue drains', async () => {
    // Readings of one host's two counters; the true increase is last − first, per mode.
    const readings = [
      { tS: t0, user: 100, system: 20 },
      { tS: t0 + 60, user: 103.5, system: 21.25 },
      { tS: t0 + 120, user: 110.25, system: 22 },
      { tS: t0 + 180, user: 120.75, system: 25.5 },
    ] as const;
    const increase = (a: (typeof readings)[number], b: (typeof readings)[number]) => toMicros(b.user) - toMicros(a.user) + (toMicros(b.system) - toMicros(a.system));
    const body = readings.map((r) => reading(r.tS, r.user, r.system));

    expect((await exportTo(ingest, body[0]!)).status).toBe(200); // baseline: no sample
    expect((await exportTo(ingest, body[1]!)).status).toBe(200); // one batch queued; no worker takes it
    expect(await pendingGauge(ingest)).toBe(0);
    await sleep(BACKLOG_CACHE_MS);

    // The queue is at MAX_QUEUED_BATCHES: the acceptor refuses, OTLP answers 503.
    const refused = await exportTo(ingest, body[2]!);
    expect(refused.status).toBe(503);
    expect(Number(refused.retryAfter)).toBeGreaterThan(0);
    expect(decodeStatus(refused.bytes)).toMatchObject({ code: 14 }); // UNAVAILABLE
    const held = await pendingGauge(ingest);
    expect(held).toBeGreaterThan(0);

    // The exporter retries as told: the shared state has moved on (stale, nothing new), the
    // held window is tried again, refused again, and held once — not lost, not doubled.
    const retried = await exportTo(ingest, body[2]!);
    expect(retried.status).toBe(503);
    expect(await pendingGauge(ingest)).toBe(held);

    // A worker (and the read API) on the same Redis prefix drains the queue: only the
    // window accepted before the back-pressure is billed so far.
    engine = await startTestPipeline('otlp-bp-engine', { KEY_PREFIX: ingest.config.KEY_PREFIX });
    expect(await billedCpu(engine)).toBe(increase(readings[0], readings[1]));
    await sleep(BACKLOG_CACHE_MS);

    // The next export goes through, with the held window in front of its own.
    const next = await exportTo(ingest, body[3]!);
    expect(next.status).toBe(200);
    expect(decodeResponse(next.bytes).partialSuccess).toBeUndefined();
    expect(await pendingGauge(ingest)).toBe(0);
    expect(await billedCpu(engine)).toBe(increase(readings[0], readings[3]));
  }, 120_000);
});
