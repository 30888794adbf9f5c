/**
 * POST /v1/metrics under hostile and unbillable input, on a real pipeline: every answer is
 * a 2xx or 4xx with a reason (never a 5xx); what is valid beside the bad is billed; what
 * is not billable (histograms, summaries, NaN, negative, unidentified resources, metrics no
 * rule reads) is counted in partial_success with a reason naming it; body, gzip, data point
 * and per-resource series limits hold; a retried request is not billed twice.
 */
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeResponse, decodeStatus, encodeRequest } from '../ingest/otlp/decode.js';
import { decimalToMicros } from './support/oracle.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

let p: TestPipeline;
const BODY_LIMIT = 2 * 1024 * 1024;
const HOUR = 3_600_000;
const t0 = Math.floor(Date.now() / 1000) - 120; // seconds; a little in the past
const ns = (s: number) => `${BigInt(s) * 1_000_000_000n}`;

beforeAll(async () => {
  p = await startTestPipeline('otlp-hostile', { MAX_BODY_BYTES: String(BODY_LIMIT) });
});
afterAll(async () => {
  await p?.stop();
});

type Json = Record<string, unknown>;
const kv = (attrs: Record<string, string | number>) =>
  Object.entries(attrs).map(([key, v]) => ({ key, value: typeof v === 'number' ? { intValue: String(v) } : { stringValue: v } }));
const resource = (account: string, host: string, extra: Record<string, string> = {}) => ({ attributes: kv({ 'cloud.account.id': account, 'host.id': host, 'cloud.region': 'eu-west-1', ...extra }) });
const request = (res: Json, metrics: Json[]): Json => ({ resourceMetrics: [{ resource: res, scopeMetrics: [{ scope: { name: 'hostile' }, metrics }] }] });
const point = (start: number, end: number, value: number, attrs: Record<string, string | number> = {}) => ({ attributes: kv(attrs), startTimeUnixNano: ns(start), timeUnixNano: ns(end), asDouble: value });
const cpuSum = (temporality: 1 | 2, points: Json[]) => ({ name: 'system.cpu.time', unit: 's', sum: { aggregationTemporality: temporality, isMonotonic: true, dataPoints: points } });

async function send(body: Uint8Array | string, opts: { type?: string; key?: string | null; encoding?: string } = {}) {
  const headers: Record<string, string> = { 'content-type': opts.type ?? (typeof body === 'string' ? 'application/json' : 'application/x-protobuf') };
  if (opts.key !== null) headers.authorization = `Bearer ${opts.key ?? KEYS.producer}`;
  if (opts.encoding) headers['content-encoding'] = opts.encoding;
  const res = await fetch(`${p.url}/v1/metrics`, { method: 'POST', headers, body: typeof body === 'string' ? body : Buffer.from(body) });
  const bytes = Buffer.from(await res.arrayBuffer());
  return { status: res.status, type: res.headers.get('content-type') ?? '', bytes, retryAfter: res.headers.get('retry-after') };
}
const sendProto = (req: Json) => send(encodeRequest(req));
const partialOf = (bytes: Buffer) => decodeResponse(bytes).partialSuccess;

async function usage(account: string): Promise<Record<string, bigint>> {
  await p.waitIdle();
  const from = new Date(Math.floor(t0 * 1000 / HOUR) * HOUR - 2 * HOUR).toISOString();
  const to = new Date(Math.floor(Date.now() / HOUR) * HOUR + HOUR).toISOString();
  const res = await p.get(`/v1/accounts/${account}/usage?from=${from}&to=${to}&granularity=total`);
  expect(res.status).toBe(200);
  return Object.fromEntries(res.body.rows.map((r: { metric: string; base_total: string }) => [r.metric, decimalToMicros(r.base_total)]));
}

describe('unreadable bodies', () => {
  it('answers 400 with a google.rpc.Status for malformed protobuf, in protobuf', async () => {
    for (const bytes of [Buffer.from([0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f]), Buffer.from('not protobuf at all, just text'), encodeRequest(request(resource('a', 'h'), [cpuSum(1, [point(t0, t0 + 60, 1)])])).slice(0, 25)]) {
      const r = await send(bytes);
      expect(r.status).toBe(400);
      expect(r.type).toMatch(/^application\/x-protobuf/);
      expect(decodeStatus(r.bytes)).toMatchObject({ code: 3, message: expect.stringMatching(/not a valid protobuf ExportMetricsServiceRequest/) });
    }
  });

  it('answers 400 in JSON for malformed, mistyped or deeply nested OTLP/JSON', async () => {
    const deep = `{"resourceMetrics":[${'['.repeat(100_000)}${']'.repeat(100_000)}]}`;
    for (const [body, message] of [
      ['{"resourceMetrics": [', /not valid JSON/],
      ['[1,2,3]', /must be a JSON object/],
      ['{"resourceMetrics": "everything"}', /not an OTLP\/JSON ExportMetricsServiceRequest/],
      [deep, /nested deeper than 64 levels/],
    ] as const) {
      const r = await send(body);
      expect(r.status, body.slice(0, 40)).toBe(400);
      expect(JSON.parse(r.bytes.toString())).toMatchObject({ code: 3, message: expect.stringMatching(message) });
    }
    const bad = await send(Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), { type: 'application/json' });
    expect(bad.status).toBe(400);
    expect(JSON.parse(bad.bytes.toString()).message).toMatch(/not valid UTF-8/);
  });

  it('bounds gzip: a bomb stops at the body limit (413), bad gzip is 400, other encodings 415', async () => {
    const bomb = gzipSync(Buffer.alloc(BODY_LIMIT * 4));
    expect(bomb.length).toBeLessThan(BODY_LIMIT);
    const r = await send(bomb, { encoding: 'gzip' });
    expect(r.status).toBe(413);
    expect(decodeStatus(r.bytes).message).toMatch(/decompressed body is larger than/);
    expect((await send(Buffer.from('definitely not gzip'), { encoding: 'gzip' })).status).toBe(400);
    expect((await send(Buffer.from('x'), { encoding: 'br' })).status).toBe(415);
    expect((await send(Buffer.alloc(BODY_LIMIT + 10))).status).toBe(413);
    // A good gzip body is read.
    const ok = await send(gzipSync(encodeRequest(request(resource('acct-gz', 'h-gz'), [cpuSum(1, [point(t0, t0 + 60, 1.25, { 'cpu.mode': 'user' })])]))), { encoding: 'gzip' });
    expect(ok.status).toBe(200);
    expect(partialOf(ok.bytes)).toBeUndefined();
    expect((await usage('acct-gz')).cpu).toBe(1_250_000n);
  });

  it('refuses other content types (415), missing keys (401) and other roles (403)', async () => {
    const body = encodeRequest(request(resource('a', 'h'), []));
    expect((await send(Buffer.from(body), { type: 'text/plain' })).status).toBe(415);
    expect((await send(body, { key: null })).status).toBe(401);
    expect((await send(body, { key: KEYS.billing })).status).toBe(403);
  });
});

describe('valid OTLP that is not (all) billable', () => {
  it('bills the valid points and counts every other one with its reason', async () => {
    const res = resource('acct-mixed', 'h-mixed');
    const ok = point(t0, t0 + 60, 2, { 'cpu.mode': 'system' });
    const req = request(res, [
      cpuSum(1, [ok, point(t0, t0 + 60, -1, { 'cpu.mode': 'user' }), point(t0, t0 + 60, Number.POSITIVE_INFINITY, { 'cpu.mode': 'nice' })]),
      { name: 'http.server.duration', unit: 'ms', histogram: { aggregationTemporality: 1, dataPoints: [{ startTimeUnixNano: ns(t0), timeUnixNano: ns(t0 + 60), count: '3', sum: 7, bucketCounts: ['1', '2'], explicitBounds: [5] }] } },
      { name: 'rpc.latency', unit: 's', exponentialHistogram: { aggregationTemporality: 2, dataPoints: [{ timeUnixNano: ns(t0 + 60), count: '1', scale: 2 }, { timeUnixNano: ns(t0 + 60), count: '1', scale: 2 }] } },
      { name: 'gc.pause', unit: 's', summary: { dataPoints: [{ timeUnixNano: ns(t0 + 60), count: '1', sum: 0.5 }] } },
      { name: 'system.memory.usage', unit: 'By', sum: { aggregationTemporality: 1, isMonotonic: false, dataPoints: [point(t0, t0 + 60, 5, { 'system.memory.state': 'used' })] } },
      { name: 'system.cpu.time', unit: 's', sum: { aggregationTemporality: 0, isMonotonic: true, dataPoints: [point(t0, t0 + 60, 1)] } },
      { name: 'app.requests', unit: '{request}', sum: { aggregationTemporality: 1, isMonotonic: true, dataPoints: [point(t0, t0 + 60, 10)] } },
    ]);
    const r = await sendProto(req);
    expect(r.status).toBe(200);
    const partial = partialOf(r.bytes)!;
    expect(partial.rejectedDataPoints).toBe('9');
    for (const reason of [
      /1 × "http\.server\.duration": histogram data points are not billed/,
      /2 × "rpc\.latency": exponential histogram data points are not billed/,
      /1 × "gc\.pause": summary data points are not billed/,
      /1 × "system\.memory\.usage": a non-monotonic delta sum is a change, not a level/,
      /1 × "system\.cpu\.time": a sum without an aggregation temporality/,
      /1 × "app\.requests" \(as app_requests_total\): no rule of mapping otel_host@1 bills it/,
      /"system\.cpu\.time": counter value -1 is not a finite number ≥ 0/,
      /"system\.cpu\.time": counter value Infinity is not a finite number ≥ 0/,
    ]) {
      expect(partial.errorMessage).toMatch(reason);
    }
    expect(partial.errorMessage).toMatch(/^9 data points rejected: /);
    // The one good point is billed, exactly.
    expect(await usage('acct-mixed')).toEqual({ cpu: 2_000_000n });
  });

  it('counts NaN and negative readings of cumulative counters and gauges, and bills the rest', async () => {
    const res = resource('acct-nan', 'h-nan');
    const cum = (end: number, user: number) => cpuSum(2, [point(t0 - 600, end, user, { 'cpu.mode': 'user' })]);
    const mem = (end: number, used: number) => ({ name: 'system.memory.usage', unit: 'By', gauge: { dataPoints: [point(0, end, used, { 'system.memory.state': 'used' })] } });
    expect(partialOf((await sendProto(request(res, [cum(t0, 10), mem(t0, 1000)]))).bytes)).toBeUndefined(); // baselines
    const bad = await sendProto(request(res, [cum(t0 + 30, Number.NaN), mem(t0 + 30, -5)]));
    expect(bad.status).toBe(200);
    const partial = partialOf(bad.bytes)!;
    expect(partial.rejectedDataPoints).toBe('2');
    expect(partial.errorMessage).toMatch(/counter value NaN is not a finite number ≥ 0/);
    expect(partial.errorMessage).toMatch(/gauge value -5 is not a finite number ≥ 0/);
    // The next good readings bill across the bad ones: the counter kept its last value,
    // the gauge its window start (the collectors' rules).
    expect(partialOf((await sendProto(request(res, [cum(t0 + 60, 13.5), mem(t0 + 60, 2000)]))).bytes)).toBeUndefined();
    expect(await usage('acct-nan')).toEqual({ cpu: 3_500_000n, memory: 2000n * 60n * 1_000_000n });
  });

  it('names the resource attribute that is missing, and refuses samples the wire format refuses', async () => {
    const noAccount = await sendProto(request({ attributes: kv({ 'host.id': 'h', 'cloud.region': 'eu-west-1' }) }, [cpuSum(1, [point(t0, t0 + 60, 1, { 'cpu.mode': 'user' })])]));
    expect(partialOf(noAccount.bytes)).toMatchObject({ rejectedDataPoints: '1', errorMessage: expect.stringMatching(/no account_id \(tried target_label cloud_account_id\).*"\." as "_"/) });
    const noRegion = await sendProto(request({ attributes: kv({ 'cloud.account.id': 'a', 'host.id': 'h' }) }, [cpuSum(1, [point(t0, t0 + 60, 1, { 'cpu.mode': 'user' })])]));
    expect(partialOf(noRegion.bytes)).toMatchObject({ rejectedDataPoints: '1', errorMessage: expect.stringMatching(/no cloud\.region attribute/) });
    const longAccount = await sendProto(request(resource('x'.repeat(200), 'h'), [cpuSum(1, [point(t0, t0 + 60, 1, { 'cpu.mode': 'user' })])]));
    expect(longAccount.status).toBe(200);
    expect(partialOf(longAccount.bytes)).toMatchObject({ rejectedDataPoints: '1', errorMessage: expect.stringMatching(/a sample for cpu was refused: account_id: /) });
    const future = await sendProto(request(resource('acct-future', 'h'), [cpuSum(1, [point(t0 + 86_400, t0 + 86_460, 1, { 'cpu.mode': 'user' })])]));
    expect(partialOf(future.bytes)).toMatchObject({ rejectedDataPoints: '1', errorMessage: expect.stringMatching(/ts: ts must not be more than 5 minutes in the future/) });
    const tooShort = await sendProto(request(resource('a', 'h'), [cpuSum(1, [point(t0, t0, 1, { 'cpu.mode': 'user' })])]));
    expect(partialOf(tooShort.bytes)?.errorMessage).toMatch(/a delta point needs start_time_unix_nano at least a whole second before/);
  });
});

describe('limits and retries', () => {
  it('answers 413 past the data points a request may carry', async () => {
    const points = Array.from({ length: 50_001 }, () => point(t0, t0 + 60, 1));
    const r = await sendProto(request(resource('a', 'h'), [cpuSum(1, points)]));
    expect(r.status).toBe(413);
    expect(decodeStatus(r.bytes)).toMatchObject({ code: 8, message: expect.stringMatching(/at most 50000 data points/) });
  });

  it('bounds the series tracked per resource, and keeps state for many resources', async () => {
    const many = Array.from({ length: 5_001 }, (_, i) => point(t0 - 600, t0, i, { 'cpu.mode': 'user', 'cpu.logical_number': i }));
    const r = await sendProto(request(resource('acct-wide', 'h-wide'), [cpuSum(2, many)]));
    expect(r.status).toBe(200);
    expect(partialOf(r.bytes)).toMatchObject({ rejectedDataPoints: '5001', errorMessage: expect.stringMatching(/5001 cumulative and gauge series; at most 5000 are tracked per resource/) });
    // 3,000 resources of one series each: all tracked (baselines), nothing refused.
    const resources = Array.from({ length: 3_000 }, (_, i) => ({ resource: resource('acct-many', `h-${i}`), scopeMetrics: [{ scope: { name: 's' }, metrics: [cpuSum(2, [point(t0 - 600, t0, 1, { 'cpu.mode': 'user' })])] }] }));
    const ok = await sendProto({ resourceMetrics: resources });
    expect(ok.status).toBe(200);
    expect(partialOf(ok.bytes)).toBeUndefined();
  });

  it('bills a retried delta request once (deterministic sample ids), in JSON too', async () => {
    const body = JSON.stringify(request(resource('acct-retry', 'h-retry'), [cpuSum(1, [point(t0, t0 + 60, 0.1, { 'cpu.mode': 'user' }), point(t0, t0 + 60, 0.2, { 'cpu.mode': 'system' })])]));
    for (let i = 0; i < 3; i++) {
      const r = await send(body);
      expect(r.status).toBe(200);
      expect(r.type).toMatch(/^application\/json/);
      expect(JSON.parse(r.bytes.toString())).toEqual({});
    }
    expect(await usage('acct-retry')).toEqual({ cpu: 300_000n });
  });

  it('cuts a delta window longer than an hour at UTC hours, sharing the usage exactly', async () => {
    const end = Math.floor(t0 / 3600) * 3600 - 600; // 10 minutes before an hour mark
    const start = end - 2 * 3600 - 1200;            // 8,400 s over three billing hours
    const r = await sendProto(request(resource('acct-long', 'h-long'), [cpuSum(1, [point(start, end, 7, { 'cpu.mode': 'user' })])]));
    expect(partialOf(r.bytes)).toBeUndefined();
    await p.waitIdle();
    const from = new Date((Math.floor(start / 3600) - 1) * HOUR).toISOString();
    const to = new Date((Math.floor(end / 3600) + 1) * HOUR).toISOString();
    const hourly = await p.get(`/v1/accounts/acct-long/usage?from=${from}&to=${to}&granularity=hour`);
    const micros = hourly.body.rows.map((row: { base_total: string }) => decimalToMicros(row.base_total));
    // Shares in proportion to time: 1800 s, 3600 s and the remainder (3000 s) of 8400 s.
    const first = (7_000_000n * 1800n) / 8400n;
    const second = (7_000_000n * 3600n) / 8400n;
    expect(micros).toEqual([first, second, 7_000_000n - first - second]);
  });
});
