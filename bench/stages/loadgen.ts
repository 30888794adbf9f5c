/**
 * The load generator: a process of its own, so its CPU and event loop are not the product's.
 * It serializes every request body before it starts (the timed part only sends), then:
 *
 *   --mode max   N connections send back to back (closed loop) until every batch is
 *                acknowledged; a 503 waits its Retry-After and resends the same batch.
 *   --mode rate  open loop at a fixed offered rate: batch i is due at start + i × interval,
 *                sent then whatever the previous ones are doing; latency is measured from
 *                the due time (so a stalled server is not hidden by a waiting client).
 *
 * Protocol on stdout: `START <epoch ms>` just before the first POST, `SENT <epoch ms>` when
 * the last batch is acknowledged; the result JSON goes to --out.
 *
 *   node --import tsx bench/stages/loadgen.ts --url URL --key KEY --spec JSON --mode max|rate
 *        [--concurrency 4] [--rate SAMPLES_PER_S] --out FILE
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { stageArgs, writeResult } from '../lib/child.js';
import { memStatus, resetPeakRss } from '../lib/proc.js';
import { percentiles, type Percentiles } from '../lib/stats.js';
import { requestBodies, type WorkloadSpec } from '../lib/workload.js';

export interface LoadgenResult {
  mode: 'max' | 'rate';
  batches: number;
  items: number;
  accepted: number;
  rejectedItems: number;
  /** Batches refused whole (400: nothing valid). */
  batches400: number;
  /** 503 answers (back-pressure) and other retried failures. */
  backpressure503: number;
  otherRetries: number;
  failedBatches: number;
  firstPostAtMs: number;
  lastAckAtMs: number;
  sendSeconds: number;
  offeredRatePerS: number | null;
  achievedAckRatePerS: number;
  /** Due (rate) or send (max) time → 202, per batch. */
  latencyMs: Percentiles;
  /** The same, without the first 5 s (the freshly started product warming up). */
  latencyAfterWarmupMs: Percentiles;
  /** Send → 202 of the successful attempt only. */
  serviceMs: Percentiles;
  /** p99 latency per 5-second window of the run: does it drift? */
  p99ByWindowMs: number[];
  bodyBytesPerSample: number;
  /** This process's CPU while sending (generation excluded), per sample. */
  cpuUsPerSample: number;
  rssBeforeSendMB: number;
  peakRssWhileSendingMB: number;
}

const a = stageArgs();
const spec = JSON.parse(a.spec ?? '{}') as WorkloadSpec;
const mode = a.mode === 'rate' ? 'rate' : 'max';
const endpoint = new URL('/v1/samples', a.url).toString();
const headers = { 'content-type': 'application/json', authorization: `Bearer ${a.key}` };

const { bodies, items } = requestBodies(spec);
const bodyBytes = bodies.reduce((n, b) => n + b.length, 0);
const rssBeforeSendMB = memStatus(process.pid).vmRSSkB / 1024;
resetPeakRss();

let accepted = 0;
let rejectedItems = 0;
let batches400 = 0;
let backpressure503 = 0;
let otherRetries = 0;
let failedBatches = 0;
const latency: Array<{ atMs: number; ms: number }> = [];
const service: number[] = [];

/** Sends one batch until it is answered for good; returns the time of its final answer. */
async function send(body: Buffer, dueMs: number): Promise<void> {
  for (let attempt = 1; attempt <= 20; attempt++) {
    const sentAt = performance.now();
    let status = 0;
    let retryAfterS = 0;
    try {
      // A Buffer is a Uint8Array; the DOM typings want one backed by a plain ArrayBuffer.
      const res = await fetch(endpoint, { method: 'POST', headers, body: body as Uint8Array<ArrayBuffer>, signal: AbortSignal.timeout(120_000) });
      status = res.status;
      retryAfterS = Number(res.headers.get('retry-after') ?? 0);
      const text = await res.text();
      if (status === 202) {
        const now = performance.now();
        const r = JSON.parse(text) as { accepted: number; rejected: unknown[] };
        accepted += r.accepted;
        rejectedItems += r.rejected.length;
        latency.push({ atMs: now, ms: now - dueMs });
        service.push(now - sentAt);
        return;
      }
      if (status === 400) {
        batches400++;
        return;
      }
    } catch {
      status = 0;
    }
    if (status === 503) {
      backpressure503++;
      await sleep(Math.min(5, Math.max(0.05, retryAfterS)) * 1000);
    } else {
      otherRetries++;
      await sleep(Math.min(5000, 100 * 2 ** attempt));
    }
  }
  failedBatches++;
}

const cpu0 = process.cpuUsage();
const firstPostAtMs = Date.now();
const t0 = performance.now();
process.stdout.write(`START ${firstPostAtMs}\n`);

const offered = a.rate ? Number(a.rate) : undefined;
if (mode === 'max') {
  let next = 0;
  const connection = async () => {
    while (next < bodies.length) {
      const body = bodies[next++] as Buffer;
      await send(body, performance.now());
    }
  };
  await Promise.all(Array.from({ length: Number(a.concurrency ?? 4) }, connection));
} else {
  if (!offered || !(offered > 0)) throw new Error('--mode rate needs --rate');
  const perBatch = items / bodies.length;
  const intervalMs = (perBatch / offered) * 1000;
  const inflight = new Set<Promise<void>>();
  for (let i = 0; i < bodies.length; i++) {
    const due = t0 + i * intervalMs;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const p = send(bodies[i] as Buffer, due).finally(() => inflight.delete(p));
    inflight.add(p);
    // A bound on open requests, so a dead server cannot make this process grow forever.
    if (inflight.size >= 1024) await Promise.race(inflight);
  }
  await Promise.all(inflight);
}
const sendSeconds = (performance.now() - t0) / 1000;
const lastAckAtMs = Date.now();
const cpu = process.cpuUsage(cpu0);
process.stdout.write(`SENT ${lastAckAtMs}\n`);

const windows: number[][] = [];
for (const l of latency) (windows[Math.floor((l.atMs - t0) / 5000)] ??= []).push(l.ms);

const result: LoadgenResult = {
  mode,
  batches: bodies.length,
  items,
  accepted,
  rejectedItems,
  batches400,
  backpressure503,
  otherRetries,
  failedBatches,
  firstPostAtMs,
  lastAckAtMs,
  sendSeconds,
  offeredRatePerS: offered ?? null,
  achievedAckRatePerS: accepted / sendSeconds,
  latencyMs: percentiles(latency.map((l) => l.ms)),
  latencyAfterWarmupMs: percentiles(latency.filter((l) => l.atMs - t0 >= 5000).map((l) => l.ms)),
  serviceMs: percentiles(service),
  p99ByWindowMs: [...windows].map((w) => (w ? percentiles(w).p99 : Number.NaN)),
  bodyBytesPerSample: bodyBytes / items,
  cpuUsPerSample: (cpu.user + cpu.system) / items,
  rssBeforeSendMB,
  peakRssWhileSendingMB: memStatus(process.pid).vmHWMkB / 1024,
};
writeResult(a.out, result);
