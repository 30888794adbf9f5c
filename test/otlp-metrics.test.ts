/**
 * OTLP ingest in /metrics, on a real pipeline (real Redis, real chdb): every series exists
 * at zero before anything happens; exporting known data points moves
 * um_otlp_data_points_total by exactly the accepted points and the rejected ones by reason
 * (the same total partial_success told the exporter); the shared state's size and evictions
 * are what Redis holds, read at scrape time, and a scrape never counts an eviction twice.
 */
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeResponse, decodeJsonRequest, encodeRequest } from '../ingest/otlp/decode.js';
import { SharedSeriesState } from '../ingest/otlp/shared-state.js';
import { OtlpTranslator } from '../ingest/otlp/translate.js';
import { OTLP_EVICTION_CAUSES, OTLP_REJECTION_REASONS } from '../lib/metrics.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

let p: TestPipeline;
let redis: Redis;
const t0 = Math.floor(Date.now() / 1000) - 600; // seconds, in the past
const ns = (s: number) => `${BigInt(s) * 1_000_000_000n}`;

beforeAll(async () => {
  p = await startTestPipeline('otlp-metrics');
  redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
});
afterAll(async () => {
  redis?.disconnect();
  await p?.stop();
});

type Json = Record<string, unknown>;
const kv = (attrs: Record<string, string | number>) => Object.entries(attrs).map(([key, v]) => ({ key, value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: v } }));
const resource = (account: string, host: string, extra: Record<string, string> = {}) => ({ attributes: kv({ 'cloud.account.id': account, 'host.id': host, 'cloud.region': 'eu-west-1', ...extra }) });
const rm = (res: Json, metrics: Json[]) => ({ resource: res, scopeMetrics: [{ scope: { name: 'metrics-test' }, metrics }] });
const point = (start: number, end: number, value: number, attrs: Record<string, string | number> = {}) => ({ attributes: kv(attrs), startTimeUnixNano: ns(start), timeUnixNano: ns(end), asDouble: value });
const cpuSum = (temporality: 1 | 2, points: Json[]) => ({ name: 'system.cpu.time', unit: 's', sum: { aggregationTemporality: temporality, isMonotonic: true, dataPoints: points } });

async function exportProto(resourceMetrics: Json[]) {
  const res = await fetch(`${p.url}/v1/metrics`, { method: 'POST', headers: { 'content-type': 'application/x-protobuf', authorization: `Bearer ${KEYS.producer}` }, body: Buffer.from(encodeRequest({ resourceMetrics })) });
  expect(res.status).toBe(200);
  return Number(decodeResponse(Buffer.from(await res.arrayBuffer())).partialSuccess?.rejectedDataPoints ?? 0);
}

/** /metrics as "name{labels}" → value, for the um_otlp_ series. */
async function scrape(): Promise<Map<string, number>> {
  const res = await fetch(`${p.url}/metrics`);
  expect(res.status).toBe(200);
  const out = new Map<string, number>();
  for (const line of (await res.text()).split('\n')) {
    const m = /^(um_otlp_[a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}
const rejected = (reason: string) => `um_otlp_data_points_total{result="rejected",reason="${reason}"}`;
const ACCEPTED = 'um_otlp_data_points_total{result="accepted"}';

describe('OTLP series in /metrics', () => {
  it('are all there at zero before anything happened', async () => {
    const m = await scrape();
    expect(m.get(ACCEPTED)).toBe(0);
    for (const reason of OTLP_REJECTION_REASONS) expect(m.get(rejected(reason)), reason).toBe(0);
    for (const cause of OTLP_EVICTION_CAUSES) expect(m.get(`um_otlp_state_evictions_total{cause="${cause}"}`), cause).toBe(0);
    for (const name of ['um_otlp_pending_samples', 'um_otlp_pending_dropped_total', 'um_otlp_state_fields', 'um_otlp_state_scopes']) expect(m.get(name), name).toBe(0);
  });

  it('count exported data points by result and reason, as partial_success told the exporter', async () => {
    const host = resource('acct-metrics', 'h-metrics');
    const cumulative = (end: number, user: number, system: number, extra: Json[] = []) =>
      cpuSum(2, [point(t0 - 600, end, user, { 'cpu.mode': 'user' }), point(t0 - 600, end, system, { 'cpu.mode': 'system' }), ...extra]);
    // What each request carries, and why a point would be refused: the expectations below
    // are sums over these lists, not numbers read back from the pipeline.
    const sent: { points: number; reason?: (typeof OTLP_REJECTION_REASONS)[number] }[] = [];
    const first = [rm(host, [cumulative(t0, 10, 4)])];
    sent.push({ points: 2 }); // baselines: accepted, bill nothing
    const second = [
      rm(host, [
        cumulative(t0 + 60, 12.5, 5, [point(t0 - 600, t0 + 60, 12.5, { 'cpu.mode': 'user' })]), // the last one repeats the first
        { name: 'http.server.duration', unit: 'ms', histogram: { aggregationTemporality: 1, dataPoints: [{ startTimeUnixNano: ns(t0), timeUnixNano: ns(t0 + 60), count: '3', sum: 7, bucketCounts: ['1', '2'], explicitBounds: [5] }] } },
        { name: 'gc.pause', unit: 's', summary: { dataPoints: [{ timeUnixNano: ns(t0 + 60), count: '1', sum: 0.5 }] } },
        { name: 'app.requests', unit: '{request}', sum: { aggregationTemporality: 1, isMonotonic: true, dataPoints: [point(t0, t0 + 60, 10), point(t0, t0 + 60, 11, { route: '/b' })] } },
      ]),
      rm({ attributes: kv({ 'cloud.account.id': 'acct-metrics', 'host.id': 'h-no-region' }) }, [cpuSum(1, [point(t0, t0 + 60, 1, { 'cpu.mode': 'user' })])]),
      rm(resource('acct-metrics', 'h-future'), [cpuSum(2, [point(t0, t0 + 86_400, 1, { 'cpu.mode': 'user' })])]),
      rm(resource('acct-metrics', 'h-delta'), [cpuSum(1, [point(t0, t0 + 60, -1, { 'cpu.mode': 'user' }), point(t0, t0 + 60, 0.5, { 'cpu.mode': 'system' })])]),
      rm(resource('acct-metrics', 'h-delta-future'), [cpuSum(1, [point(t0 + 86_400, t0 + 86_460, 1, { 'cpu.mode': 'user' })])]),
    ];
    sent.push(
      { points: 2 }, // user 12.5, system 5: 3.5 s of cpu
      { points: 1, reason: 'duplicate' },
      { points: 2, reason: 'unsupported_type' }, // histogram, summary
      { points: 2, reason: 'unmapped' },
      { points: 1, reason: 'resource' }, // no cloud.region
      { points: 1, reason: 'out_of_time_range' }, // a cumulative point a day ahead
      { points: 1, reason: 'invalid_point' }, // a negative delta
      { points: 1 }, // the good delta point
      { points: 1, reason: 'refused' }, // a delta a day ahead: the acceptor's validation refuses its sample
    );
    const told = (await exportProto(first)) + (await exportProto(second));

    const m = await scrape();
    const expected = new Map<string, number>();
    for (const s of sent) expected.set(s.reason ?? 'accepted', (expected.get(s.reason ?? 'accepted') ?? 0) + s.points);
    expect(m.get(ACCEPTED)).toBe(expected.get('accepted'));
    let rejectedTotal = 0;
    for (const reason of OTLP_REJECTION_REASONS) {
      expect(m.get(rejected(reason)), reason).toBe(expected.get(reason) ?? 0);
      rejectedTotal += m.get(rejected(reason))!;
    }
    expect(rejectedTotal).toBe(told);
    expect(m.get(ACCEPTED)! + rejectedTotal).toBe(sent.reduce((n, s) => n + s.points, 0));
    expect(m.get('um_otlp_pending_samples')).toBe(0); // nothing was held back

    // The shared state: only h-metrics reached it (deltas keep none; the future point was
    // refused before it), one group (cpu) and two counter series (user, system).
    const size = await new SharedSeriesState(redis, p.redisKeys).size();
    expect(size).toMatchObject({ scopes: 1, fields: 3 });
    expect(m.get('um_otlp_state_scopes')).toBe(size.scopes);
    expect(m.get('um_otlp_state_fields')).toBe(size.fields);
  });

  it('report the shared state’s evictions from Redis, each once however often scraped', async () => {
    // Another ingest process of the same pipeline with a tighter bound, moving the same
    // Redis state on: its evictions are the pipeline's, and /metrics must show them.
    const state = new SharedSeriesState(redis, p.redisKeys, { maxScopes: 2 });
    const translator = new OtlpTranslator({ state });
    const hostExport = (host: string, tS: number) =>
      decodeJsonRequest(Buffer.from(JSON.stringify({ resourceMetrics: [rm(resource('acct-evict', host), [cpuSum(2, [point(t0 - 600, tS, 1, { 'cpu.mode': 'user' })])])] })), 50_000);
    const evictedLimit = async () => Number((await redis.hget(p.redisKeys.otlpStateMeta, 'evicted:limit')) ?? 0);
    for (const [i, host] of ['e1', 'e2', 'e3'].entries()) await translator.translate(hostExport(host, t0 + 100 + i));
    const afterFirst = await evictedLimit();
    expect(afterFirst).toBeGreaterThan(0);
    const a = await scrape();
    const b = await scrape(); // a second scrape adds nothing
    for (const m of [a, b]) {
      expect(m.get('um_otlp_state_evictions_total{cause="limit"}')).toBe(afterFirst);
      expect(m.get('um_otlp_state_evictions_total{cause="idle"}')).toBe(0);
      expect(m.get('um_otlp_state_evictions_total{cause="scope_limit"}')).toBe(0);
      expect(m.get('um_otlp_state_scopes')).toBe(2);
    }
    // One more host: one more eviction, counted once.
    await translator.translate(hostExport('e4', t0 + 110));
    const afterSecond = await evictedLimit();
    expect(afterSecond).toBe(afterFirst + 1);
    expect((await scrape()).get('um_otlp_state_evictions_total{cause="limit"}')).toBe(afterSecond);
  });
});
