import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { describe, it, expect, afterAll } from 'vitest';
import { parseSample, RESOURCE_TYPES, type SampleInput } from '../schemas/sample.js';
import { createFleet, REGIONS } from '../sim/fleet.js';
import { countExpected, generateSamples, type GenerateOptions, type SampleBatch } from '../sim/samples.js';
import { dailyProfile, describeTraces, loadTraces } from '../sim/traces.js';
import { INVALID_KINDS, makeInvalid, type InvalidKind } from '../sim/inject.js';
import { ExpectedTotals } from '../sim/expected.js';
import { postBatches, PostError, retryAfterMs } from '../sim/post.js';
import { runSimulateCommand } from '../sim/cli.js';
import { Rng } from '../sim/random.js';
import { createHash } from 'node:crypto';

const START = Date.UTC(2026, 10, 20); // a Friday, 00:00 UTC
const HOUR = 3_600_000;

function collect(fleetOpts: Parameters<typeof createFleet>[0], opts: Partial<GenerateOptions>): SampleBatch[] {
  return [...generateSamples(createFleet(fleetOpts), { start: START, hours: 2, ...opts })];
}

const tsMs = (s: SampleInput) => (typeof s.ts === 'number' ? s.ts : Date.parse(s.ts));
const naturalKey = (s: SampleInput) => `${s.account_id}|${s.resource_id}|${s.metric}|${tsMs(s)}`;

describe('createFleet', () => {
  const fleet = createFleet();

  it('has 100 accounts and 1,000 resources of all six types by default', () => {
    expect(fleet.accounts).toHaveLength(100);
    expect(fleet.resources).toHaveLength(1000);
    expect(new Set(fleet.resources.map((r) => r.type))).toEqual(new Set(RESOURCE_TYPES));
    expect(fleet.accounts.reduce((n, a) => n + a.resourceCount, 0)).toBe(1000);
  });

  it('covers every type even in a tiny fleet', () => {
    expect(new Set(createFleet({ accounts: 3, resources: 6 }).resources.map((r) => r.type))).toEqual(new Set(RESOURCE_TYPES));
  });

  it('skews account sizes: a few big accounts, a long tail of small ones', () => {
    const sizes = fleet.accounts.map((a) => a.resourceCount).sort((a, b) => b - a);
    const median = sizes[50]!;
    expect(sizes[0]!).toBeGreaterThan(20 * median);
    expect(sizes.slice(0, 10).reduce((a, b) => a + b, 0)).toBeGreaterThan(500);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(1);
  });

  it('uses identifiable ids, known regions and low-cardinality attributes', () => {
    for (const a of fleet.accounts) expect(a.id).toMatch(/^acct-\d{4}$/);
    for (const r of fleet.resources) {
      expect(r.id).toMatch(new RegExp(`^(vm|vol|db|bkt|lb|net)-${r.accountId}-\\d{4}$`));
      expect(REGIONS.map((x) => x.name)).toContain(r.region);
      for (const k of Object.keys(r.attributes ?? {})) expect(['instance_type', 'plan', 'zone']).toContain(k);
      if (r.attributes?.zone) expect(r.attributes.zone).toMatch(new RegExp(`^${r.region}[abc]$`));
    }
    expect(new Set(fleet.resources.map((r) => r.id)).size).toBe(1000);
    const instanceTypes = new Set(fleet.resources.map((r) => r.attributes?.instance_type).filter(Boolean));
    expect(instanceTypes.size).toBeLessThanOrEqual(12);
    expect(instanceTypes).toContain('m5.large');
  });

  it('is deterministic for a seed', () => {
    expect(createFleet({ seed: 7 })).toEqual(createFleet({ seed: 7 }));
    expect(createFleet({ seed: 7 })).not.toEqual(createFleet({ seed: 8 }));
  });
});

describe('generateSamples', () => {
  const opts = { duplicateRate: 0.02, invalidRate: 0.02, conflictRate: 0.01, batchSize: 500 };
  const batches = collect({ accounts: 20, resources: 200 }, opts);
  const all = batches.flatMap((b) => b.items);
  const nowMs = START + 3 * HOUR;

  it('is deterministic: same seed, same output; another seed, other output', () => {
    expect(JSON.stringify(collect({ accounts: 20, resources: 200 }, opts))).toBe(JSON.stringify(batches));
    expect(JSON.stringify(collect({ accounts: 20, resources: 200 }, { ...opts, seed: 2 }))).not.toBe(JSON.stringify(batches));
  });

  it('keeps valid values independent of the injection rates', () => {
    const clean = collect({ accounts: 20, resources: 200 }, { duplicateRate: 0, invalidRate: 0 });
    const cleanItems = clean.flatMap((b) => b.items) as SampleInput[];
    const injected = batches.flatMap((b) => b.items.filter((_, i) => !b.invalidIndexes.includes(i) && !b.duplicateIndexes.includes(i)));
    expect(injected).toEqual(cleanItems);
  });

  it('produces only valid samples, except the injected invalid items, which all fail', () => {
    let valid = 0;
    let invalid = 0;
    for (const b of batches) {
      const bad = new Set(b.invalidIndexes);
      b.items.forEach((item, i) => {
        const r = parseSample(item, nowMs);
        if (bad.has(i)) {
          expect(r.ok, JSON.stringify(item)).toBe(false);
          invalid++;
        } else {
          expect(r, JSON.stringify(item)).toMatchObject({ ok: true });
          valid++;
        }
      });
      expect(b.valid + b.invalid).toBe(b.items.length);
    }
    expect(invalid).toBeGreaterThan(10);
    expect(valid).toBe(batches.reduce((n, b) => n + b.valid, 0));
  });

  it('writes cpu with at most 6 decimals and bytes as integers', () => {
    const valid = all.filter((x) => parseSample(x, nowMs).ok) as SampleInput[];
    for (const s of valid) {
      if (s.metric === 'cpu' || s.metric === 'gpu') expect(JSON.stringify(s.value)).toMatch(/^\d+(\.\d{1,6})?$/);
      else expect(Number.isSafeInteger(s.value)).toBe(true);
    }
  });

  it('mixes RFC 3339 (UTC and offsets) and epoch-ms timestamps', () => {
    const ts = (all.filter((x) => parseSample(x, nowMs).ok) as SampleInput[]).map((s) => s.ts);
    expect(ts.some((t) => typeof t === 'number')).toBe(true);
    expect(ts.some((t) => typeof t === 'string' && t.endsWith('Z'))).toBe(true);
    expect(ts.some((t) => typeof t === 'string' && /[+-]\d{2}:\d{2}$/.test(t))).toBe(true);
  });

  it('marks exactly the re-sent samples as duplicates, and nothing else repeats', () => {
    const seenIds = new Set<string>();
    const seenKeys = new Map<string, number>();
    let exact = 0;
    let sameKey = 0;
    for (const b of batches) {
      const dup = new Set(b.duplicateIndexes);
      const bad = new Set(b.invalidIndexes);
      b.items.forEach((item, i) => {
        if (bad.has(i)) return;
        const s = item as SampleInput;
        const key = naturalKey(s);
        if (dup.has(i)) {
          expect(seenKeys.has(key)).toBe(true);
          if (seenIds.has(s.id)) exact++;
          else sameKey++;
          return;
        }
        expect(seenIds.has(s.id)).toBe(false);
        expect(seenKeys.has(key)).toBe(false);
        seenIds.add(s.id);
        seenKeys.set(key, b.index);
      });
    }
    expect(exact).toBeGreaterThan(0);
    expect(sameKey).toBeGreaterThan(0);
    expect(seenKeys.size).toBe(countExpected(createFleet({ accounts: 20, resources: 200 }), { hours: 2 }).samples);
  });

  it('sends exact duplicates in a later batch, and fills batches to the requested size', () => {
    const firstBatchOfId = new Map<string, number>();
    for (const b of batches) {
      b.items.forEach((item, i) => {
        const id = (item as SampleInput | null)?.id;
        if (typeof id !== 'string' || b.invalidIndexes.includes(i)) return;
        const first = firstBatchOfId.get(id);
        if (first === undefined) firstBatchOfId.set(id, b.index);
        else expect(b.index).toBeGreaterThan(first);
      });
    }
    // Only the end is short: the last regular batch, then one holding the last re-sends.
    expect(batches.slice(0, -2).every((b) => b.items.length === 500)).toBe(true);
    expect(batches.every((b) => b.items.length <= 500)).toBe(true);
    expect(batches.map((b) => b.index)).toEqual(batches.map((_, i) => i));
  });

  it('follows a diurnal CPU shape from the Azure trace shipped in sim/traces/, and the synthetic fallback too', () => {
    // The default reads only the repository's own sim/traces/: a fresh clone has the real shape.
    const real = loadTraces();
    const warnings: string[] = [];
    const synthetic = loadTraces({ dataDir: '/nonexistent/trace/dir', warn: (m) => warnings.push(m) });
    expect(real.source).toEqual({ cpu: 'azure2019', net: 'synthetic' });
    expect(describeTraces(real)).toMatch(/^cpu azure2019 \(derived weekly profile\), bandwidth synthetic/);
    expect(synthetic.source).toEqual({ cpu: 'synthetic', net: 'synthetic' });
    expect(warnings).toEqual([expect.stringMatching(/\/nonexistent\/trace\/dir\/ does not exist: .*synthetic/)]);
    for (const t of [real, synthetic]) {
      const day = dailyProfile(t);
      expect(Math.max(...day) / Math.min(...day)).toBeGreaterThan(1.08);
      expect(t.cpuWeek.reduce((a, b) => a + b, 0) / t.cpuWeek.length).toBeCloseTo(1, 9);
    }

    // Simulated fleet CPU, summed per UTC hour over a day in one region: it swings too.
    const fleet = createFleet({ accounts: 50, resources: 600, seed: 3 });
    const hourly = new Array<number>(24).fill(0);
    for (const b of generateSamples(fleet, { start: START, hours: 24, stepS: 300, duplicateRate: 0, invalidRate: 0 })) {
      for (const s of b.items as SampleInput[]) {
        if (s.metric === 'cpu') hourly[Math.floor((tsMs(s) - 1 - START) / HOUR)]! += s.value;
      }
    }
    expect(Math.max(...hourly) / Math.min(...hourly)).toBeGreaterThan(1.1);
  });

  it('grows storage over time', () => {
    const fleet = createFleet({ accounts: 10, resources: 100 });
    const first = new Map<string, number>();
    const last = new Map<string, number>();
    for (const b of generateSamples(fleet, { start: START, hours: 24, stepS: 600, duplicateRate: 0, invalidRate: 0 })) {
      for (const s of b.items as SampleInput[]) {
        if (s.metric !== 'storage') continue;
        if (!first.has(s.resource_id)) first.set(s.resource_id, s.value);
        expect(s.value).toBeGreaterThanOrEqual(last.get(s.resource_id) ?? 0);
        last.set(s.resource_id, s.value);
      }
    }
    expect(first.size).toBeGreaterThan(10);
    for (const [id, v] of first) expect(last.get(id)!).toBeGreaterThan(v);
  });

  it('streams 24 h × 1,000 resources without holding them', { timeout: 120_000 }, () => {
    const fleet = createFleet();
    const expected = countExpected(fleet, { hours: 24 });
    expect(expected.samples).toBeGreaterThan(2_000_000);
    let items = 0;
    let distinct = 0;
    let largest = 0;
    let batchesSeen = 0;
    const heapBefore = process.memoryUsage().heapUsed;
    for (const b of generateSamples(fleet, { start: START, hours: 24 })) {
      items += b.items.length;
      distinct += b.valid - b.duplicates;
      largest = Math.max(largest, b.items.length);
      batchesSeen++;
    }
    expect(distinct).toBe(expected.samples);
    expect(items).toBeGreaterThan(expected.samples);
    expect(largest).toBe(1000);
    expect(batchesSeen).toBeGreaterThan(4000);
    // Millions of samples held at once would take gigabytes; a stream stays far below.
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(300 * 1024 * 1024);
  });
});

describe('injected invalid items', () => {
  it('every kind fails validation', () => {
    const [batch] = collect({ accounts: 2, resources: 12 }, { hours: 1, duplicateRate: 0, invalidRate: 0 });
    const samples = batch!.items as SampleInput[];
    const rng = new Rng(1);
    for (const kind of Object.keys(INVALID_KINDS) as InvalidKind[]) {
      for (const s of samples.slice(0, 20)) {
        const bad = makeInvalid(s, rng, kind);
        expect(parseSample(bad, START + 3 * HOUR).ok, `${kind}: ${JSON.stringify(bad)}`).toBe(false);
      }
    }
  });
});

describe('ExpectedTotals', () => {
  it('matches a naive exact sum over distinct, valid samples', () => {
    const batches = collect({ accounts: 5, resources: 40 }, { duplicateRate: 0.05, invalidRate: 0.05, conflictRate: 0.02, batchSize: 97 });
    const expected = new ExpectedTotals();
    for (const b of batches) expected.add(b);

    const seen = new Set<string>();
    const naive = new Map<string, bigint>();
    for (const item of batches.flatMap((b) => b.items)) {
      const r = parseSample(item, START + 3 * HOUR);
      if (!r.ok) continue;
      const s = r.sample;
      const key = `${s.account_id}|${s.resource_id}|${s.metric}|${s.ts_ms}`;
      if (seen.has(key) || seen.has(`id:${s.id}`)) continue; // first accepted stands
      seen.add(key).add(`id:${s.id}`);
      const units = s.metric === 'cpu' || s.metric === 'gpu' ? BigInt(Number(s.value).toFixed(6).replace('.', ''))
        : s.metric === 'memory' || s.metric === 'storage' ? BigInt(s.value) * BigInt(s.interval_s)
        : BigInt(s.value);
      naive.set(`${s.account_id}|${s.metric}`, (naive.get(`${s.account_id}|${s.metric}`) ?? 0n) + units);
    }
    expect(expected.distinct).toBe(seen.size / 2);
    const rows = expected.rows();
    expect(rows).toHaveLength(naive.size);
    for (const row of rows) {
      const units = naive.get(`${row.account_id}|${row.metric}`)!;
      const asString = row.metric === 'cpu' || row.metric === 'gpu'
        ? `${units / 1_000_000n}.${(units % 1_000_000n).toString().padStart(6, '0')}`.replace(/\.?0+$/, '')
        : units.toString();
      expect(row.base_total).toBe(asString);
    }
  });
});

describe('postBatches', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  /** A stand-in ingest: validates with parseSample, and answers 503 to every third request. */
  async function fakeIngest(opts: { status?: number } = {}) {
    let requests = 0;
    const auth: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        requests++;
        auth.push(req.headers.authorization ?? '');
        res.setHeader('content-type', 'application/json');
        if (opts.status) {
          res.writeHead(opts.status).end(JSON.stringify({ error: { code: 'unauthorized', message: 'bad key' } }));
          return;
        }
        if (requests % 3 === 1) {
          res.writeHead(503, { 'retry-after': '0' }).end(JSON.stringify({ error: { code: 'backpressure', message: 'later' } }));
          return;
        }
        const items = (JSON.parse(body) as { samples: unknown[] }).samples;
        const rejected: Array<{ index: number; errors: unknown[] }> = [];
        items.forEach((item, index) => {
          const r = parseSample(item, START + 3 * HOUR);
          if (!r.ok) rejected.push({ index, errors: r.errors });
        });
        res.writeHead(202).end(JSON.stringify({ accepted: items.length - rejected.length, rejected }));
      });
    });
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    return { url: `http://127.0.0.1:${port}`, auth, requests: () => requests };
  }

  it('retries 503 with Retry-After and matches rejections to the injected invalid items', async () => {
    const ingest = await fakeIngest();
    const batches = collect({ accounts: 5, resources: 40 }, { duplicateRate: 0.02, invalidRate: 0.02, batchSize: 200 });
    const done: number[] = [];
    const summary = await postBatches(ingest.url, 'producer-secret', batches, {
      concurrency: 3,
      onBatch: (r) => done.push(r.index),
    });
    expect(summary.failed).toEqual([]);
    expect(summary.batches).toBe(batches.length);
    expect(summary.retries).toBeGreaterThan(0);
    expect(summary.sent).toBe(batches.reduce((n, b) => n + b.items.length, 0));
    expect(summary.accepted).toBe(batches.reduce((n, b) => n + b.valid, 0));
    expect(summary.rejected).toBe(summary.invalidInjected);
    expect(summary.unexpectedRejections + summary.unexpectedAcceptances).toBe(0);
    expect(done.sort((a, b) => a - b)).toEqual(batches.map((b) => b.index));
    expect(new Set(ingest.auth)).toEqual(new Set(['Bearer producer-secret']));
  });

  it('stops and throws on 401', async () => {
    const ingest = await fakeIngest({ status: 401 });
    const batches = collect({ accounts: 2, resources: 10 }, { batchSize: 50 });
    await expect(postBatches(ingest.url, 'wrong', batches)).rejects.toBeInstanceOf(PostError);
    expect(ingest.requests()).toBeLessThanOrEqual(4); // one per worker at most, then stop
  });

  it('gives up on an unreachable server: lists the failed batch and stops early', async () => {
    const batches = collect({ accounts: 2, resources: 10 }, { batchSize: 50 });
    const summary = await postBatches('http://127.0.0.1:1', 'k', batches, { maxAttempts: 2, concurrency: 1 });
    expect(summary.stopped).toBe(true);
    expect(summary.failed).toHaveLength(1);
    expect(summary.failed[0]).toMatchObject({ index: 0, status: 0 });
    expect(summary.retries).toBe(1);
  });

  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4_000)).toBe(6000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});

describe('simulate command', () => {
  const sink = () => {
    const chunks: string[] = [];
    const stream = new Writable({ write: (c, _e, cb) => (chunks.push(String(c)), cb()) });
    return { stream, text: () => chunks.join('') };
  };

  it('prints help', async () => {
    const out = sink();
    expect(await runSimulateCommand(['--help'], { stdout: out.stream, stderr: sink().stream })).toBe(0);
    expect(out.text()).toContain('--batch-size');
  });

  it('writes NDJSON to stdout, deterministic for a seed', async () => {
    const run = async () => {
      const out = sink();
      const err = sink();
      const args = ['--accounts', '3', '--resources', '12', '--hours', '1', '--step', '300',
        '--start', '2026-11-20T00:00:00Z', '--seed', '5', '--quiet', '--invalid-rate', '0', '--duplicate-rate', '0'];
      expect(await runSimulateCommand(args, { stdout: out.stream, stderr: err.stream })).toBe(0);
      return { out: out.text(), err: err.text() };
    };
    const a = await run();
    const lines = a.out.trim().split('\n').map((l) => JSON.parse(l) as unknown);
    expect(lines.length).toBe(countExpected(createFleet({ accounts: 3, resources: 12, seed: 5 }), { hours: 1, stepS: 300 }).samples);
    for (const l of lines) expect(parseSample(l, START + 3 * HOUR).ok).toBe(true);
    expect((await run()).out).toBe(a.out);
    expect(a.err).toContain('distinct samples');
  });

  it('refuses bad options with status 2', async () => {
    const err = sink();
    expect(await runSimulateCommand(['--step', '7200'], { stdout: sink().stream, stderr: err.stream })).toBe(2);
    expect(err.text()).toContain('--step');
    expect(await runSimulateCommand(['--url', 'http://localhost:1'], { stdout: sink().stream, stderr: sink().stream })).toBe(2);
  });
});

describe('gpu metering in the simulator', () => {
  const fleet = createFleet({ accounts: 20, resources: 200 });
  const opts = { start: START, hours: 2, duplicateRate: 0.02, invalidRate: 0.02 };
  const distinct = (batches: SampleBatch[]) =>
    batches.flatMap((b) => b.items.filter((_, i) => !b.invalidIndexes.includes(i) && !b.duplicateIndexes.includes(i))) as SampleInput[];

  it('gives GPUs to some VMs only, and those VMs report gpu after their other metrics', () => {
    const gpuVms = fleet.resources.filter((r) => r.metrics.includes('gpu'));
    const vms = fleet.resources.filter((r) => r.type === 'vm');
    expect(gpuVms.length).toBeGreaterThan(0);
    expect(gpuVms.length).toBeLessThan(vms.length / 3);
    for (const r of gpuVms) {
      expect(r.type).toBe('vm');
      expect(r.metrics).toEqual(['cpu', 'memory', 'storage', 'bandwidth_in', 'bandwidth_out', 'gpu']);
      expect([1, 2, 4, 8]).toContain(r.profile.gpus);
    }
    for (const r of fleet.resources) if (!r.metrics.includes('gpu')) expect(r.profile.gpus).toBe(0);
  });

  it('writes GPU-seconds with at most 6 decimals, never more than the GPUs could use', () => {
    const byId = new Map(fleet.resources.map((r) => [r.id, r]));
    const gpu = distinct([...generateSamples(fleet, opts)]).filter((s) => s.metric === 'gpu');
    expect(gpu.length).toBeGreaterThan(0);
    for (const s of gpu) {
      expect(parseSample(s, START + 3 * HOUR)).toMatchObject({ ok: true, sample: { metric: 'gpu', value: String(s.value) } });
      expect(JSON.stringify(s.value)).toMatch(/^\d+(\.\d{1,6})?$/);
      expect(s.value).toBeGreaterThan(0);
      expect(s.value).toBeLessThanOrEqual(byId.get(s.resource_id)!.profile.gpus * s.interval_s);
    }
    expect(gpu.some((s) => !Number.isInteger(s.value))).toBe(true);
  });

  it('leaves every other metric of a seed exactly as before gpu existed', () => {
    // SHA-256 of this fleet's distinct non-gpu samples: gpu draws from streams of its own,
    // so adding it changed none of them, and demo and bench numbers for a seed stay
    // comparable. Re-pinned (was cedec757…) when the traces moved into the repository
    // (sim/traces/: the CPU profile rounded to 6 digits, bandwidth now the synthetic
    // shape); samples.ts itself did not change.
    const others = distinct([...generateSamples(fleet, opts)]).filter((s) => s.metric !== 'gpu');
    expect(others).toHaveLength(67_560);
    expect(createHash('sha256').update(JSON.stringify(others)).digest('hex')).toBe('a8a11ed71cf03fe274fc53bd45eb6e30eab12eeb24a5d7f1080c86bfd6bd7103');
  });

  it('counts gpu samples in the expected totals, exactly', () => {
    const batches = [...generateSamples(fleet, opts)];
    const expected = new ExpectedTotals();
    for (const b of batches) expected.add(b);
    const gpu = distinct(batches).filter((s) => s.metric === 'gpu');
    const account = gpu[0]!.account_id;
    const micros = gpu.filter((s) => s.account_id === account).reduce((n, s) => n + BigInt(s.value.toFixed(6).replace('.', '')), 0n);
    const whole = micros / 1_000_000n;
    const frac = (micros % 1_000_000n).toString().padStart(6, '0').replace(/0+$/, '');
    expect(expected.get(account, 'gpu')).toBe(frac ? `${whole}.${frac}` : `${whole}`);
    expect(countExpected(fleet, { hours: 2 }).perStep).toBe(fleet.resources.reduce((n, r) => n + r.metrics.length, 0));
  });
});
