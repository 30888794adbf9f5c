/**
 * Sandbox load: does a heavy analyst slow down the pipeline for everyone else?
 *
 *   npx tsx bench/sandbox-load.ts [--seconds 20] [--rate 25]
 *
 * Starts the real product (`cli/main.ts start`, embedded engine, its own Redis prefix) in
 * a child process, seeds analytics, then probes `GET /healthz` and `POST /v1/samples`
 * (10 samples, 202) at a steady rate, first unloaded, then while four heavy sandbox
 * queries are in flight the whole time (each is re-issued as soon as it is answered):
 * two CPU-bound joins that would run to the time limit, one that hits the memory limit,
 * one with a result of ~20 MB. Reports p50/p99 of both probes in each phase, the ratio
 * loaded/unloaded (goal: ≤ 2), the sandbox's answers by status, and the product's RSS.
 * The probes, the heavy analyst and the product are three processes, so that neither
 * reading a 20 MB answer nor the product's work delays the probes' own event loop.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { onLines, spawnTsx } from './lib/child.js';
import { deleteRedisKeys, startProduct } from './lib/server.js';
import { percentiles } from './lib/stats.js';

const { values: args } = parseArgs({
  options: {
    seconds: { type: 'string', default: '20' },
    rate: { type: 'string', default: '25' },
    'keep-data': { type: 'boolean', default: false },
    // Internal: this script run as the heavy analyst, in a process of its own.
    'heavy-url': { type: 'string' },
    'planner-key': { type: 'string' },
  },
});
const SECONDS = Number(args.seconds);
const RATE = Number(args.rate); // probes of each kind per second

const HEAVY = [
  'SELECT count() AS n FROM numbers(100000) AS a CROSS JOIN numbers(100000) AS b WHERE cityHash64(a.number, b.number) % 1000 = 7',
  'SELECT region, metric, count() AS c FROM analytics.fleet_usage_hourly AS f CROSS JOIN numbers(20000000) AS n GROUP BY region, metric',
  'SELECT length(groupArray(number)) AS n FROM numbers(100000000)',
  "SELECT number, concat(repeat('x', 150), toString(number)) AS pad FROM numbers(100000)",
];

const keys = { producer: secret(), planner: args['planner-key'] ?? secret() };
const prefix = `umbench-sbx-${process.pid}-${Date.now().toString(36)}`;
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'um-bench-sandbox-'));

function secret(): string {
  return randomBytes(18).toString('base64url');
}

function sample(i: number, account: number, hourStart: number) {
  return {
    id: `bench-sbx-${i}`,
    account_id: `acct-bench-${String(account).padStart(4, '0')}`,
    resource_id: `vm-${account}-${i % 7}`,
    resource_type: 'vm',
    region: 'eu-west-1', // one cohort of 12 accounts: above k = 10, so it is published
    metric: 'cpu',
    value: (i % 100) + 0.5,
    ts: new Date(hourStart + (i % 3600) * 1000).toISOString(),
    interval_s: 60,
    attributes: { instance_type: 'm5.large' },
  };
}

let nextSample = 1_000_000;
async function postSamples(url: string, samples: unknown[]): Promise<number> {
  const res = await fetch(`${url}/v1/samples`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.producer}` },
    body: JSON.stringify(samples),
  });
  await res.arrayBuffer();
  return res.status;
}

async function sql(url: string, statement: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`${url}/v1/analytics/sql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.planner}` },
    body: JSON.stringify({ sql: statement }),
  });
  return { status: res.status, body: await res.text() };
}

/** Probes both endpoints at RATE per second each for `seconds`; latencies in ms. */
async function probe(url: string, seconds: number) {
  const health: number[] = [];
  const ingest: number[] = [];
  const statuses: Record<string, number> = {};
  const end = Date.now() + seconds * 1000;
  const hourStart = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 3_600_000;
  const loop = async (fn: () => Promise<void>) => {
    const interval = 1000 / RATE;
    let next = Date.now();
    while (Date.now() < end) {
      await fn();
      next += interval;
      const wait = next - Date.now();
      if (wait > 0) await sleep(wait);
    }
  };
  await Promise.all([
    loop(async () => {
      const t0 = performance.now();
      const res = await fetch(`${url}/healthz`);
      await res.arrayBuffer();
      health.push(performance.now() - t0);
    }),
    loop(async () => {
      const batch = Array.from({ length: 10 }, (_, k) => sample(nextSample++, 1 + (k % 12), hourStart));
      const t0 = performance.now();
      const status = await postSamples(url, batch);
      const ms = performance.now() - t0;
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status === 202) ingest.push(ms);
    }),
  ]);
  return { health: percentiles(health), ingest: percentiles(ingest), ingestStatuses: statuses };
}

function rssMB(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : NaN;
}

async function main(): Promise<void> {
  const product = await startProduct({
    dataDir,
    prefix,
    env: { API_KEYS: `producer:bench-producer:${keys.producer},planner:bench-planner:${keys.planner}`, LOG_LEVEL: 'warn', ROLLUP_QUIET_MS: '0' },
  });
  const url = product.url;
  try {
    // Seed: 12 accounts (k = 10) × 6 past hours, so analytics has published cells.
    const now = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    let i = 0;
    for (let h = 6; h >= 2; h--) {
      const batch = [];
      for (let a = 1; a <= 12; a++) for (let s = 0; s < 200; s++) batch.push(sample(i++, a, now - h * 3_600_000));
      const status = await postSamples(url, batch);
      if (status !== 202) throw new Error(`seeding got ${status}`);
    }
    const seeded = Date.now() + 60_000;
    for (;;) {
      const r = await sql(url, 'SELECT count() AS n FROM analytics.fleet_usage_hourly');
      if (r.status === 200 && JSON.parse(r.body).rows[0].n !== '0') break;
      if (Date.now() > seeded) {
        console.log(`analytics not published yet (${r.status}); the heavy queries run anyway`);
        break;
      }
      await sleep(500);
    }
    console.log(`seeded; warming up`);
    await probe(url, 3); // JIT, connections

    const unloaded = await probe(url, SECONDS);
    console.log(`unloaded: healthz p99 ${unloaded.health.p99.toFixed(1)} ms, 202 p99 ${unloaded.ingest.p99.toFixed(1)} ms`);

    // Four heavy queries in flight throughout, from another process.
    const heavy = spawnTsx('bench/sandbox-load.ts', ['--heavy-url', url, '--planner-key', keys.planner]);
    let answers: Record<string, number> = {};
    onLines(heavy.stdout, (line) => {
      if (line.startsWith('{')) answers = JSON.parse(line) as Record<string, number>;
    });
    const heavyExited = new Promise((resolve) => heavy.once('exit', resolve));
    await sleep(1000); // the first ones are admitted
    const loaded = await probe(url, SECONDS);
    heavy.kill('SIGTERM');
    console.log(`loaded:   healthz p99 ${loaded.health.p99.toFixed(1)} ms, 202 p99 ${loaded.ingest.p99.toFixed(1)} ms`);
    await heavyExited;

    const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;
    const report = {
      seconds: SECONDS,
      probesPerSecond: RATE,
      cores: os.availableParallelism(),
      unloaded: { healthzMs: round(unloaded.health), ingest202Ms: round(unloaded.ingest), ingestStatuses: unloaded.ingestStatuses },
      loaded: { healthzMs: round(loaded.health), ingest202Ms: round(loaded.ingest), ingestStatuses: loaded.ingestStatuses },
      ratioP99: { healthz: ratio(loaded.health.p99, unloaded.health.p99), ingest202: ratio(loaded.ingest.p99, unloaded.ingest.p99) },
      sandboxAnswers: answers,
      productPeakRssMB: rssMB(product.pid),
    };
    console.log(JSON.stringify(report, null, 2));
    const ok = report.ratioP99.healthz <= 2 && report.ratioP99.ingest202 <= 2;
    console.log(ok ? 'PASS: both p99 within 2x of unloaded' : 'MISS: a p99 is beyond 2x of unloaded');
  } finally {
    await product.stop();
    await deleteRedisKeys(prefix);
    if (!args['keep-data']) rmSync(dataDir, { recursive: true, force: true });
  }
}

function safeCode(body: string): string {
  try {
    return String(JSON.parse(body).error?.code ?? '');
  } catch {
    return 'unparsable';
  }
}

function round(p: { p50: number; p99: number }) {
  return { p50: Math.round(p.p50 * 10) / 10, p99: Math.round(p.p99 * 10) / 10 };
}

/** The heavy analyst: keeps every HEAVY statement in flight until SIGTERM, then prints its answers. */
async function heavyAnalyst(url: string): Promise<void> {
  let stop = false;
  const answers: Record<string, number> = {};
  const inFlight = new Set<AbortController>();
  process.once('SIGTERM', () => {
    stop = true;
    for (const c of inFlight) c.abort(); // and the product kills their queries
  });
  await Promise.all(
    HEAVY.map(async (statement) => {
      while (!stop) {
        const ctl = new AbortController();
        inFlight.add(ctl);
        try {
          const res = await fetch(`${url}/v1/analytics/sql`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${keys.planner}` },
            body: JSON.stringify({ sql: statement }),
            signal: ctl.signal,
          });
          let code = String(res.status);
          if (res.status === 200) for await (const _ of res.body!); // read and drop it
          else code += ` ${safeCode(await res.text())}`;
          answers[code] = (answers[code] ?? 0) + 1;
          if (res.status === 429) await sleep(200);
        } catch {
          // aborted at the end
        } finally {
          inFlight.delete(ctl);
        }
      }
    }),
  );
  console.log(JSON.stringify(answers));
}

(args['heavy-url'] ? heavyAnalyst(args['heavy-url']) : main()).catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
