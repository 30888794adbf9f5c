/**
 * OTLP cumulative exports split across TWO ingest processes (`start --role ingest`, each
 * its own OS process and port, sharing the pipeline's Redis and KEY_PREFIX with the test's
 * pipeline, which runs the workers): the bill equals the counters' true increase exactly.
 *
 * - One host's exports alternate between the processes, one of them late (older than one
 *   the other process already took), a retry lands on the other process, and the host
 *   restarts (new start time) in between. Per-process state bills the time between the two
 *   processes' baselines twice, and the late export's interval again (checked: this test
 *   fails on the in-process state this replaced).
 * - Many hosts export pairs of readings to both processes at the same moment, in either
 *   order: whichever comes second is either stale or moves on from the first; never both.
 *
 * Then the shared state on its own (real Redis, no pipeline): its bounds, what dropping
 * state does (it may only under-bill), idle expiry, and that it stores no identifier.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJsonRequest } from '../ingest/otlp/decode.js';
import { SharedSeriesState, type SharedStateLimits } from '../ingest/otlp/shared-state.js';
import { OtlpTranslator } from '../ingest/otlp/translate.js';
import { redisKeys } from '../schemas/queues.js';
import { PipelineProcess, freePort } from './faults/support/processes.js';
import { decimalToMicros } from './support/oracle.js';
import { deleteKeys, KEYS, startTestPipeline, uniquePrefix, type TestPipeline } from './support/pipeline.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const API_KEYS = Object.entries(KEYS).map(([role, secret]) => `${role}:${role}-test:${secret}`).join(',');
const HOUR = 3_600_000;
const GiB = 1024n ** 3n;

// --- OTLP/JSON bodies built from exact readings -----------------------------------------

/** A host's cumulative counters (µ-vCPU-seconds, bytes) and memory level at one export. */
interface Reading {
  user: bigint;
  system: bigint;
  rx: bigint;
  tx: bigint;
  memory: bigint;
}
const zero = (): Reading => ({ user: 0n, system: 0n, rx: 0n, tx: 0n, memory: 0n });

type Json = Record<string, unknown>;
const kv = (attrs: Record<string, string>) => Object.entries(attrs).map(([key, v]) => ({ key, value: { stringValue: v } }));
/** Seconds plus a fraction, as nanoseconds: exact start/time comparisons are exercised. */
const ns = (s: number, fracMs = 250) => `${BigInt(s) * 1_000_000_000n + BigInt(fracMs) * 1_000_000n}`;
const seconds = (micros: bigint) => Number(micros) / 1e6; // ≤ 6 decimals: the double nearest the decimal

function exportBody(host: string, account: string, tS: number, startS: number, r: Reading): Json {
  const point = (value: number, attrs: Record<string, string>, gauge = false) => ({
    attributes: kv(attrs),
    ...(gauge ? {} : { startTimeUnixNano: ns(startS, 500) }),
    timeUnixNano: ns(tS),
    asDouble: value,
  });
  const sum = (name: string, unit: string, points: Json[]) => ({ name, unit, sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: points } });
  return {
    resourceMetrics: [
      {
        resource: { attributes: kv({ 'cloud.account.id': account, 'host.id': host, 'cloud.region': 'eu-west-1', 'service.instance.id': `${host}-agent` }) },
        scopeMetrics: [
          {
            scope: { name: 'otlp-shared-state-test' },
            metrics: [
              sum('system.cpu.time', 's', [point(seconds(r.user), { 'cpu.mode': 'user' }), point(seconds(r.system), { 'cpu.mode': 'system' }), point(99, { 'cpu.mode': 'idle' })]),
              sum('system.network.io', 'By', [
                point(Number(r.rx), { 'network.io.direction': 'receive', 'system.device': 'eth0' }),
                point(Number(r.tx), { 'network.io.direction': 'transmit', 'system.device': 'eth0' }),
              ]),
              { name: 'system.memory.usage', unit: 'By', gauge: { dataPoints: [point(Number(r.memory), { 'system.memory.state': 'used' }, true)] } },
            ],
          },
        ],
      },
    ],
  };
}

/** What a host must be billed: counter increases (µ) and the gauge's level × seconds. */
class Expected {
  cpu = 0n;
  rx = 0n;
  tx = 0n;
  memorySeconds = 0n;
  addIncrease(from: Reading, to: Reading) {
    this.cpu += to.user - from.user + (to.system - from.system);
    this.rx += to.rx - from.rx;
    this.tx += to.tx - from.tx;
  }
  asBill(): Record<string, bigint> {
    return { cpu: this.cpu, bandwidth_in: this.rx * 1_000_000n, bandwidth_out: this.tx * 1_000_000n, memory: this.memorySeconds * 1_000_000n };
  }
}

/** A round's usage: deterministic, with decimal CPU seconds (0.1 + 0.2 must bill as 0.3). */
function grow(r: Reading, round: number): Reading {
  return {
    user: r.user + [100_000n, 250_000n, 1_500_000n, 1n, 2_750_000n][round % 5]!,
    system: r.system + [200_000n, 50_000n, 333_333n, 1_000_000n, 400_000n][round % 5]!,
    rx: r.rx + 1_000_000n + BigInt(round) * 12_345n,
    tx: r.tx + 250_000n + BigInt(round) * 777n,
    memory: 2n * GiB + BigInt(round) * 4096n,
  };
}

// --- the two ingest processes -------------------------------------------------------------

describe('cumulative exports split across two ingest processes', () => {
  const prefix = uniquePrefix('otlp-shared');
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'um-otlp-shared-ingest-'));
  const processes: PipelineProcess[] = [];
  const urls: string[] = [];
  let p: TestPipeline;
  const t0 = Math.floor(Date.now() / 1000) - 1800;

  beforeAll(async () => {
    // The workers (and the usage API) in this process; ingest in two others on their own ports.
    p = await startTestPipeline('otlp-shared', { KEY_PREFIX: prefix });
    const ports = [await freePort(), await freePort()];
    for (const port of ports) {
      const proc = new PipelineProcess({
        ROLE: 'ingest', KEY_PREFIX: prefix, PORT: String(port), API_KEYS, REDIS_URL, DATA_DIR: dataDir,
        LOG_LEVEL: 'warn', INGEST_REQUESTS_PER_S: '100000',
      });
      processes.push(proc);
      urls.push(`http://127.0.0.1:${port}`);
    }
    await Promise.all(processes.map((proc) => proc.start(90_000)));
  }, 120_000);

  afterAll(async () => {
    for (const proc of processes) await proc.stop();
    await p?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  async function send(processIndex: number, body: Json): Promise<void> {
    const res = await fetch(`${urls[processIndex]}/v1/metrics`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.producer}` },
      body: JSON.stringify(body),
    });
    const text = await res.text();
    // Every point is taken (a stale one is taken and bills nothing): no partial_success.
    expect({ status: res.status, body: text }).toEqual({ status: 200, body: '{}' });
  }

  async function bill(account: string): Promise<Record<string, bigint>> {
    await p.waitIdle();
    const from = new Date(Math.floor((t0 * 1000) / HOUR) * HOUR - HOUR).toISOString();
    const to = new Date(Math.floor(Date.now() / HOUR) * HOUR + HOUR).toISOString();
    const res = await p.get(`/v1/accounts/${account}/usage?from=${from}&to=${to}&granularity=total`);
    expect(res.status).toBe(200);
    expect(res.body.complete).toBe(true);
    return Object.fromEntries(res.body.rows.map((r: { metric: string; base_total: string }) => [r.metric, decimalToMicros(r.base_total)]));
  }

  it('alternating, late, retried and restarted exports bill the true increase exactly', async () => {
    const host = 'vm-split-1';
    const account = 'acct-otlp-split-1';
    const start1 = t0 - 600;
    const at = (i: number) => t0 + 60 * i;
    // The exporter's readings r1..r4 under its first start time; after r4 it restarts.
    const r: Reading[] = [zero()];
    let counter = grow(zero(), 0); // usage before the first export: not ours (baseline)
    for (let i = 1; i <= 4; i++) {
      r[i] = counter;
      counter = grow(counter, i);
    }
    const start2 = at(4) + 30; // restarted 30 s after r4, before r5
    let after = zero();
    for (let i = 5; i <= 7; i++) {
      after = grow(after, i);
      r[i] = after;
    }
    const body = (i: number) => exportBody(host, account, at(i), i <= 4 ? start1 : start2, r[i]!);

    await send(0, body(1)); // A: the baseline
    await send(1, body(2)); // B
    await send(0, body(4)); // A: r3 is still on its way to B
    await send(1, body(3)); // B: late, older than r4: bills nothing
    await send(0, body(2)); // A: a retry of r2 (its answer was lost): bills nothing
    await send(1, body(5)); // B: new start time: everything since the restart
    await send(0, body(6)); // A
    await send(1, body(7)); // B

    const expected = new Expected();
    expected.addIncrease(r[1]!, r[4]!); // the first process's usage after the baseline
    expected.addIncrease(zero(), r[7]!); // the second process's usage, all of it
    // The gauge: each accepted reading's level held since the one before it.
    const chain = [1, 2, 4, 5, 6, 7];
    for (let k = 1; k < chain.length; k++) expected.memorySeconds += r[chain[k]!]!.memory * BigInt(at(chain[k]!) - at(chain[k - 1]!));
    expect(await bill(account)).toEqual(expected.asBill());
  }, 60_000);

  it('bills exactly when two processes take a host’s exports at the same moment, in either order', async () => {
    const hosts = 12;
    const rounds = 9; // r1 alone, then (r2, r3), …, (r8, r9) at once, then r10 alone
    const memory = 3n * GiB; // a constant level: the bill does not depend on which slots won
    const expected = new Expected();
    const readings: Reading[][] = [];
    for (let h = 0; h < hosts; h++) {
      const r: Reading[] = [zero()];
      let c = grow(zero(), h);
      for (let i = 1; i <= rounds + 1; i++) {
        r[i] = { ...c, memory };
        c = grow(c, i + h);
      }
      readings.push(r);
      expected.addIncrease(r[1]!, r[rounds + 1]!);
    }
    const body = (h: number, i: number) => exportBody(`vm-race-${h}`, 'acct-otlp-race', t0 + 60 * i, t0 - 600, readings[h]![i]!);
    await Promise.all(Array.from({ length: hosts }, (_, h) => send(h % 2, body(h, 1))));
    for (let i = 2; i <= rounds; i += 2) {
      // Each host's two readings go to different processes at once; which lands first varies.
      await Promise.all(Array.from({ length: hosts }, (_, h) => [send((h + i) % 2, body(h, i)), send((h + i + 1) % 2, body(h, i + 1))]).flat());
    }
    await Promise.all(Array.from({ length: hosts }, (_, h) => send(h % 2, body(h, rounds + 1))));
    expected.memorySeconds = BigInt(hosts) * memory * BigInt(60 * rounds);
    expect(await bill('acct-otlp-race')).toEqual(expected.asBill());
  }, 90_000);

  it('keeps the state in Redis under KEY_PREFIX, with no identifier in it', async () => {
    const redis = new Redis(REDIS_URL);
    try {
      const keys = redisKeys(prefix);
      const state = new SharedSeriesState(redis, keys);
      const size = await state.size();
      // 13 hosts, each 4 groups (cpu, bandwidth_in, bandwidth_out, memory) and 4 counter
      // series (user, system, receive, transmit): a restart changes no field.
      expect(size.scopes).toBe(13);
      expect(size.fields).toBe(13 * 8);
      const scopes = await redis.zrange(keys.otlpScopes, '0', '-1');
      let fields = 0;
      for (const scope of scopes) {
        const hash = await redis.hgetall(keys.otlpScope(scope));
        fields += Object.keys(hash).length;
        const text = JSON.stringify(hash);
        for (const identifier of ['acct-otlp', 'vm-', 'eth0', 'user', 'cpu']) expect(text).not.toContain(identifier);
      }
      expect(size.fields).toBe(fields);
      expect(size.floorMs).toBe(0); // nothing was dropped
    } finally {
      redis.disconnect();
    }
  });
});

// --- the shared state's bounds, on its own ------------------------------------------------

describe('the shared state’s bounds: dropping state only under-bills', () => {
  const redis = new Redis(REDIS_URL);
  const prefixes: string[] = [];
  afterAll(async () => {
    for (const prefix of prefixes) await deleteKeys(REDIS_URL, prefix);
    redis.disconnect();
  });

  function translator(limits: Partial<SharedStateLimits>) {
    const prefix = uniquePrefix('otlp-state-bounds');
    prefixes.push(prefix);
    const state = new SharedSeriesState(redis, redisKeys(prefix), limits);
    return { state, t: new OtlpTranslator({ state }) };
  }
  const cpuOnly = (host: string, tS: number, startS: number, userSeconds: number, extraSeries = 0) => {
    const points = [{ attributes: kv({ 'cpu.mode': 'user' }), startTimeUnixNano: ns(startS), timeUnixNano: ns(tS), asDouble: userSeconds }];
    for (let i = 0; i < extraSeries; i++) points.push({ attributes: kv({ 'cpu.mode': 'user', 'cpu.logical_number': `${tS}-${i}` }), startTimeUnixNano: ns(startS), timeUnixNano: ns(tS), asDouble: 1 });
    return decodeJsonRequest(
      Buffer.from(JSON.stringify({
        resourceMetrics: [{
          resource: { attributes: kv({ 'cloud.account.id': 'acct-bounds', 'host.id': host, 'cloud.region': 'eu-west-1' }) },
          scopeMetrics: [{ scope: { name: 's' }, metrics: [{ name: 'system.cpu.time', unit: 's', sum: { aggregationTemporality: 2, isMonotonic: true, dataPoints: points } }] }],
        }],
      })),
      50_000,
    );
  };
  const billed = (samples: { value: number }[]) => samples.reduce((n, s) => n + BigInt(Math.round(s.value * 1e6)), 0n);
  const now = Date.now();
  const t = Math.floor(now / 1000) - 3600;

  it('a late export after its host’s state was evicted (total bound) cannot become a baseline billed again', async () => {
    const { state, t: tr } = translator({ maxScopes: 2 });
    let total = 0n;
    total += billed((await tr.translate(cpuOnly('h1', t, t - 60, 10), now)).samples); // baseline
    total += billed((await tr.translate(cpuOnly('h1', t + 60, t - 60, 20), now)).samples); // 10 s
    // Two more hosts, with later readings: h1, the oldest, is evicted and leaves a floor.
    await tr.translate(cpuOnly('h2', t + 90, t - 60, 1), now);
    await tr.translate(cpuOnly('h3', t + 95, t - 60, 1), now);
    expect(await state.size()).toMatchObject({ scopes: 2, floors: 1, floorMs: 0, evicted: { limit: 1 } });
    // h1's floor is its own: a new host with readings as old still starts its baseline.
    expect((await tr.translate(cpuOnly('h4', t + 30, t - 60, 1), now)).notes).toEqual({ baselines: 1, resets: 0, stale: 0 });
    // A late h1 export from before its last billed reading: without the floor it would be a
    // baseline and the next reading would bill 15…20 again.
    const late = await tr.translate(cpuOnly('h1', t + 30, t - 60, 15), now);
    expect(late.samples).toEqual([]);
    expect(late.notes.stale).toBe(1);
    total += billed((await tr.translate(cpuOnly('h1', t + 120, t - 60, 30), now)).samples); // a new baseline
    total += billed((await tr.translate(cpuOnly('h1', t + 180, t - 60, 34), now)).samples); // 4 s
    // The counter went from 10 to 34: at most 24 s may be billed; the 20 → 30 gap is lost.
    expect(total).toBe(14_000_000n);
    // Floors are bounded too (maxScopes): the lowest (h4's) became every scope's floor.
    expect(await state.size()).toMatchObject({ scopes: 2, floors: 2, floorMs: (t + 30) * 1000, evicted: { limit: 3 } });
  });

  it('a host whose series outgrow the per-resource bound starts again from a baseline, and never bills twice', async () => {
    const { state, t: tr } = translator({ maxFieldsPerScope: 12 });
    let total = 0n;
    total += billed((await tr.translate(cpuOnly('churn', t, t - 60, 5, 4), now)).samples); // baseline: 1 group + 5 series
    total += billed((await tr.translate(cpuOnly('churn', t + 60, t - 60, 8, 0), now)).samples); // 3 s
    expect(total).toBe(3_000_000n);
    // New labels (churn): 6 + 7 fields > 12, so the host's state is dropped, after this
    // export is billed: user 8 → 9, and the 7 new series from zero (nothing was ever dropped).
    const churn = await tr.translate(cpuOnly('churn', t + 120, t - 60, 9, 7), now);
    expect(billed(churn.samples)).toBe(1_000_000n + 7n * 1_000_000n);
    expect(await state.size()).toMatchObject({ scopes: 0, fields: 0, floors: 1, floorMs: 0, evicted: { scope_limit: 1 } });
    // A retry of the t+60 export (to another process, say) finds no state: not a baseline.
    expect((await tr.translate(cpuOnly('churn', t + 60, t - 60, 8, 0), now)).samples).toEqual([]);
    expect(billed((await tr.translate(cpuOnly('churn', t + 180, t - 60, 12, 0), now)).samples)).toBe(0n); // baseline
    expect(billed((await tr.translate(cpuOnly('churn', t + 240, t - 60, 12.5, 0), now)).samples)).toBe(500_000n);
  });

  it('idle state expires, and points older than it is kept are refused before they reach it', async () => {
    const idleMs = 86_400_000 + 600_000; // a day and 10 minutes: points older than 10 minutes are refused
    const { state, t: tr } = translator({ idleMs });
    const recent = Math.floor(now / 1000) - 60;
    await tr.translate(cpuOnly('idle', recent, recent - 60, 1), now);
    expect((await state.size()).scopes).toBe(1);
    const old = await tr.translate(cpuOnly('idle', recent - 900, recent - 960, 1), now);
    expect(old.rejections.message()).toMatch(/older than 10 minutes is not billed/);
    expect(old.notes).toEqual({ baselines: 0, resets: 0, stale: 0 });
    // A day later the scope is dropped as idle by the next request (of any host).
    const later = now + idleMs + 1000;
    const laterS = Math.floor(later / 1000);
    await tr.translate(cpuOnly('other', laterS, laterS - 60, 1), later);
    expect(await state.size()).toMatchObject({ scopes: 1, floorMs: 0, evicted: { idle: 1 } });
    // Its old readings cannot come back as a baseline: they are older than the age limit.
    expect((await tr.translate(cpuOnly('idle', recent + 60, recent - 60, 5), later)).rejections.count()).toBe(1);
  });

  it('refuses future points and start times after the point’s time, without moving the state', async () => {
    const { state, t: tr } = translator({});
    const nowS = Math.floor(now / 1000);
    const future = await tr.translate(cpuOnly('f', nowS + 3600, nowS - 60, 1), now);
    expect(future.rejections.message()).toMatch(/more than 5 minutes in the future/);
    const backwards = await tr.translate(cpuOnly('f', nowS - 60, nowS, 1), now);
    expect(backwards.rejections.message()).toMatch(/start_time_unix_nano is after its time_unix_nano/);
    expect((await state.size()).scopes).toBe(0);
  });
});
