/**
 * The real OpenTelemetry JS SDK exporting into a real pipeline over POST /v1/metrics, and
 * the bill checked to the last unit against what this test itself recorded:
 *
 * - host A exports OTLP/protobuf with cumulative temporality (the SDK's default): its first
 *   export is a baseline (the collectors' rule: what an earlier process billed is unknown),
 *   every later increment is billed; then A "restarts" (a new MeterProvider, same
 *   Resource): the new start_time_unix_nano makes its counters count from zero again.
 * - host B exports OTLP/JSON with delta temporality: every increment is billed as it is.
 * - gauges (memory, and storage as an up-down counter) are billed as the level each export
 *   reported, held over the time since the previous export, in whole seconds.
 * - points the otel_host mapping filters out (idle CPU, loopback traffic, tmpfs, free
 *   memory) are read and bill nothing.
 * Every export must succeed (HTTP 200): the SDK retries anything else.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { AggregationTemporalityPreference, OTLPMetricExporter as JsonExporter } from '@opentelemetry/exporter-metrics-otlp-http';
import { OTLPMetricExporter as ProtoExporter } from '@opentelemetry/exporter-metrics-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { MeterProvider, PeriodicExportingMetricReader, type PushMetricExporter, type ResourceMetrics } from '@opentelemetry/sdk-metrics';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decimalToMicros } from './support/oracle.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

let p: TestPipeline;

/** Forwards to the real exporter, keeping each export's end time (s) and each call's result. */
class RecordingExporter implements PushMetricExporter {
  readonly slots: number[] = [];
  readonly results: ExportResult[] = [];
  constructor(private readonly inner: PushMetricExporter) {}
  export(metrics: ResourceMetrics, done: (r: ExportResult) => void): void {
    const ends = metrics.scopeMetrics.flatMap((s) => s.metrics.flatMap((m) => m.dataPoints.map((d) => d.endTime[0])));
    this.slots.push(Math.max(...ends));
    this.inner.export(metrics, (r) => {
      this.results.push(r);
      done(r);
    });
  }
  forceFlush() {
    return this.inner.forceFlush();
  }
  shutdown() {
    return this.inner.shutdown();
  }
  selectAggregationTemporality = (t: Parameters<NonNullable<PushMetricExporter['selectAggregationTemporality']>>[0]) => this.inner.selectAggregationTemporality!(t);
}

interface Host {
  provider: MeterProvider;
  reader: PeriodicExportingMetricReader;
  exporter: RecordingExporter;
  cpu: ReturnType<ReturnType<MeterProvider['getMeter']>['createCounter']>;
  net: ReturnType<ReturnType<MeterProvider['getMeter']>['createCounter']>;
  /** Levels the observable instruments report at the next collection. */
  memory: { used: number; free: number };
  disk: { used: number; free: number; tmpfs: number };
}

function host(kind: 'protobuf' | 'json', attributes: Record<string, string>): Host {
  const url = `${p.url}/v1/metrics`;
  const headers = { authorization: `Bearer ${KEYS.producer}` };
  const inner =
    kind === 'protobuf'
      ? new ProtoExporter({ url, headers })
      : new JsonExporter({ url, headers, temporalityPreference: AggregationTemporalityPreference.DELTA });
  const exporter = new RecordingExporter(inner);
  // Exports happen when the test flushes, not on a timer.
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000, exportTimeoutMillis: 30_000 });
  const provider = new MeterProvider({ resource: resourceFromAttributes(attributes), readers: [reader] });
  const meter = provider.getMeter('usage-meter-otlp-test', '1.0.0');
  const h: Host = {
    provider,
    reader,
    exporter,
    cpu: meter.createCounter('system.cpu.time', { unit: 's' }),
    net: meter.createCounter('system.network.io', { unit: 'By' }),
    memory: { used: 0, free: 0 },
    disk: { used: 0, free: 0, tmpfs: 0 },
  };
  meter.createObservableGauge('system.memory.usage', { unit: 'By' }).addCallback((o) => {
    o.observe(h.memory.used, { 'system.memory.state': 'used' });
    o.observe(h.memory.free, { 'system.memory.state': 'free' });
  });
  meter.createObservableUpDownCounter('system.filesystem.usage', { unit: 'By' }).addCallback((o) => {
    const sda = { 'system.device': '/dev/sda1', 'system.filesystem.type': 'ext4' };
    o.observe(h.disk.used, { ...sda, 'system.filesystem.state': 'used' });
    o.observe(h.disk.free, { ...sda, 'system.filesystem.state': 'free' });
    o.observe(h.disk.tmpfs, { 'system.device': 'tmpfs', 'system.filesystem.type': 'tmpfs', 'system.filesystem.state': 'used' });
  });
  return h;
}

/** What one host's account must be billed, built from what the test records. */
class Expected {
  cpuMicros = 0n;
  bytesIn = 0n;
  bytesOut = 0n;
  memory = 0n;
  storage = 0n;
}

const GiB = 1024 ** 3;
const resourceA = { 'cloud.account.id': 'acct-otlp-a', 'host.id': 'vm-otlp-a', 'cloud.region': 'eu-west-1', 'host.type': 'm5.large', 'cloud.availability_zone': 'eu-west-1a' };
const resourceB = { 'cloud.account.id': 'acct-otlp-b', 'host.id': 'vm-otlp-b', 'cloud.region': 'us-east-1' };
const expectedA = new Expected();
const expectedB = new Expected();
let startedMs = 0;
const allExporters: RecordingExporter[] = [];

/** Records one round of usage on a host; returns it in exact units for the expectation. */
function use(h: Host, round: number): { cpuMicros: bigint; bytesIn: bigint; bytesOut: bigint } {
  // Decimal CPU seconds (at most 6 places): 0.1 + 0.2 must bill as 0.3.
  const user = [0.1, 0.25, 1.5, 0.000001, 2.75][round % 5]!;
  const system = [0.2, 0.05, 0.333333, 1, 0.4][round % 5]!;
  h.cpu.add(user, { 'cpu.mode': 'user', 'cpu.logical_number': 0 });
  h.cpu.add(system, { 'cpu.mode': 'system', 'cpu.logical_number': 1 });
  h.cpu.add(5, { 'cpu.mode': 'idle', 'cpu.logical_number': 0 }); // not billed
  const rx = 1_000_000 + round * 12_345;
  const tx = 250_000 + round * 777;
  h.net.add(rx, { 'network.io.direction': 'receive', 'system.device': 'eth0' });
  h.net.add(tx, { 'network.io.direction': 'transmit', 'system.device': 'eth0' });
  h.net.add(99_999, { 'network.io.direction': 'receive', 'system.device': 'lo' }); // not billed
  h.memory = { used: 2 * GiB + round * 4096, free: 6 * GiB };
  h.disk = { used: 40 * GiB + round * 1_000_000, free: 60 * GiB, tmpfs: GiB };
  const micros = (v: number) => BigInt(Math.round(v * 1e6));
  return { cpuMicros: micros(user) + micros(system), bytesIn: BigInt(rx), bytesOut: BigInt(tx) };
}

/** Gauge billing: each export's level held since the previous export, in whole seconds. */
function gaugeSeconds(slots: readonly number[], levels: readonly bigint[]): bigint {
  let total = 0n;
  for (let i = 1; i < slots.length; i++) total += levels[i]! * BigInt(slots[i]! - slots[i - 1]!);
  return total;
}

async function flush(...hosts: Host[]): Promise<void> {
  // Exports at least a second apart: the wire format's windows are whole seconds.
  await sleep(1_100);
  await Promise.all(hosts.map((h) => h.reader.forceFlush()));
}

beforeAll(async () => {
  p = await startTestPipeline('otlp-sdk');
  startedMs = Date.now();
  let a = host('protobuf', resourceA);
  const b = host('json', resourceB);
  allExporters.push(a.exporter, b.exporter);
  const levelsA: { memory: bigint; storage: bigint }[] = [];
  const levelsB: { memory: bigint; storage: bigint }[] = [];
  const level = (h: Host) => ({ memory: BigInt(h.memory.used), storage: BigInt(h.disk.used + h.disk.free) });

  for (let round = 0; round < 4; round++) {
    const ua = use(a, round);
    const ub = use(b, round);
    // A is cumulative: its first export is the baseline and bills nothing.
    if (round > 0) {
      expectedA.cpuMicros += ua.cpuMicros;
      expectedA.bytesIn += ua.bytesIn;
      expectedA.bytesOut += ua.bytesOut;
    }
    // B is delta: everything it recorded is billed.
    expectedB.cpuMicros += ub.cpuMicros;
    expectedB.bytesIn += ub.bytesIn;
    expectedB.bytesOut += ub.bytesOut;
    await flush(a, b);
    levelsA.push(level(a));
    levelsB.push(level(b));
  }
  const slotsA1 = [...a.exporter.slots];
  await sleep(1_100);
  await a.provider.shutdown(); // flushes once more: nothing new, same levels
  levelsA.push(level(a));

  // A restarts: same Resource, new start time. Its counters count from zero, so all of
  // what the new process records is billed.
  const before = a;
  a = host('protobuf', resourceA);
  allExporters.push(a.exporter);
  for (let round = 4; round < 6; round++) {
    const ua = use(a, round);
    if (round === 4) {
      // More than the old process's totals at once: only the new start time, not a lower
      // value, shows the restart (without it, only the excess would be billed).
      a.cpu.add(50, { 'cpu.mode': 'user', 'cpu.logical_number': 0 });
      a.net.add(50_000_000, { 'network.io.direction': 'receive', 'system.device': 'eth0' });
      expectedA.cpuMicros += 50_000_000n;
      expectedA.bytesIn += 50_000_000n;
    }
    expectedA.cpuMicros += ua.cpuMicros;
    expectedA.bytesIn += ua.bytesIn;
    expectedA.bytesOut += ua.bytesOut;
    await flush(a);
    levelsA.push(level(a));
  }
  await b.provider.shutdown();
  levelsB.push(level(b));
  await a.provider.shutdown();
  levelsA.push(level(a));

  const slotsA = [...before.exporter.slots, ...a.exporter.slots];
  expect(before.exporter.slots.slice(0, slotsA1.length)).toEqual(slotsA1);
  expectedA.memory = gaugeSeconds(slotsA, levelsA.map((l) => l.memory));
  expectedA.storage = gaugeSeconds(slotsA, levelsA.map((l) => l.storage));
  expectedB.memory = gaugeSeconds(b.exporter.slots, levelsB.map((l) => l.memory));
  // Up-down counters stay cumulative under the SDK's DELTA preference: a level, as a gauge.
  expectedB.storage = gaugeSeconds(b.exporter.slots, levelsB.map((l) => l.storage));
  await p.waitIdle();
}, 120_000);

afterAll(async () => {
  await p?.stop();
});

async function bill(account: string): Promise<Record<string, bigint>> {
  const from = new Date(Math.floor(startedMs / 3_600_000) * 3_600_000 - 3_600_000).toISOString();
  const to = new Date(Math.floor(Date.now() / 3_600_000) * 3_600_000 + 3_600_000).toISOString();
  const res = await p.get(`/v1/accounts/${account}/usage?from=${from}&to=${to}&granularity=total`);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  expect(res.body.complete).toBe(true);
  return Object.fromEntries(res.body.rows.map((r: { metric: string; base_total: string }) => [r.metric, decimalToMicros(r.base_total)]));
}

describe('OTLP export from the OpenTelemetry JS SDK', () => {
  it('every export was answered with success', () => {
    const results = allExporters.flatMap((e) => e.results);
    expect(results.length).toBeGreaterThanOrEqual(12);
    expect(results.filter((r) => r.code !== ExportResultCode.SUCCESS).map((r) => String(r.error))).toEqual([]);
    // The flushes are a second apart; the shutdown's own export may share the last one's
    // second: it is then a stale repeat that bills nothing new and loses nothing.
    for (const e of allExporters) expect(e.slots).toEqual([...e.slots].sort((x, y) => x - y));
    expect(allExporters.every((e) => new Set(e.slots).size >= e.slots.length - 1)).toBe(true);
  });

  it('bills the cumulative, restarted host exactly what it recorded after its baseline', async () => {
    const got = await bill('acct-otlp-a');
    expect(got).toEqual({
      cpu: expectedA.cpuMicros,
      bandwidth_in: expectedA.bytesIn * 1_000_000n,
      bandwidth_out: expectedA.bytesOut * 1_000_000n,
      memory: expectedA.memory * 1_000_000n,
      storage: expectedA.storage * 1_000_000n,
    });
  });

  it('bills the delta host every increment it recorded', async () => {
    const got = await bill('acct-otlp-b');
    expect(got.cpu).toBe(expectedB.cpuMicros);
    expect(got.bandwidth_in).toBe(expectedB.bytesIn * 1_000_000n);
    expect(got.bandwidth_out).toBe(expectedB.bytesOut * 1_000_000n);
    expect(got.memory).toBe(expectedB.memory * 1_000_000n);
    expect(got.storage).toBe(expectedB.storage * 1_000_000n);
    expect(Object.keys(got).sort()).toEqual(['bandwidth_in', 'bandwidth_out', 'cpu', 'memory', 'storage']);
  });
});
