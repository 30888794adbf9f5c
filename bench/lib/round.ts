/**
 * One round against the product: a fresh data directory and key prefix, the product as a
 * child process, the load generator as another, and this process watching both through
 * /proc and Redis until everything acknowledged is billed (`complete` for all time:
 * nothing in flight, nothing waiting to be folded or recomputed), and then until the
 * analytics, which trail billing by design, have caught up too (`isIdle`). Used by the
 * throughput and the latency/freshness stages.
 */
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { isComplete, isIdle } from '../../domain/ledger.js';
import { redisKeys } from '../../schemas/queues.js';
import type { LoadgenResult } from '../stages/loadgen.js';
import { runStage } from './child.js';
import { startAccountProbe, type AccountProbeOptions, type AccountProbeResult } from './account-probe.js';
import { startFreshnessProbe, type FreshnessResult } from './freshness.js';
import { diffThreadCpu, groupThreads, memStatus, processCpuMs, ProcessWatch, threadCpuMs } from './proc.js';
import { beforeRound, type QuietCheck } from './quiet.js';
import { deleteRedisKeys, localRedisPid, REDIS_URL, startProduct } from './server.js';
import type { WorkloadSpec } from './workload.js';

export interface RoundOptions {
  /** Redis keys live under `umbench-<runId>-<name>:`. */
  runId: string;
  name: string;
  /** A function when the spec depends on the moment the load starts (live `ts`). */
  spec: WorkloadSpec | (() => WorkloadSpec);
  mode: 'max' | 'rate';
  rate?: number;
  concurrency: number;
  probe: boolean;
  workDir: string;
  keepData: boolean;
  idleTimeoutMs: number;
  /** How long to wait for freshness probes still invisible when the load ends. */
  probeGraceMs?: number;
  /**
   * Safety cap for a shared machine: a product whose RSS passes it is killed and the round
   * reported as aborted (with what the product logged), instead of taking the machine down.
   */
  maxServerRssMB: number;
  /** Fill the current hour with this many minutes at this rate before the product starts. */
  prefill?: { ratePerS: number; minutes: number; loadSeconds: number };
  /** Producers post to this many separate `--role ingest` processes (0: the product's own port). */
  ingestProcesses?: number;
  /** Run on this existing data directory (stage 5b: the stored history) and keep it. */
  dataDir?: string;
  /** Settings for the product beside the bench's own. */
  env?: Record<string, string>;
  /** While the load runs, ask these stored accounts' usage back to back (stage 5b). */
  accountProbe?: Omit<AccountProbeOptions, 'url' | 'billingKey'>;
  log: (s: string) => void;
}

export interface RoundResult {
  name: string;
  /** Set when the round was cut short: the product died or passed the RSS cap. */
  aborted?: string;
  loadgen: LoadgenResult;
  /** First POST → `complete`; null when it never became complete in time. */
  e2eSeconds: number | null;
  samplesPerS: number | null;
  /** Last 202 → complete: the backlog left when the producers stopped. */
  drainSeconds: number | null;
  /** complete → analytics caught up as well (they are recomputed debounced). */
  analyticsLagSeconds: number | null;
  server: {
    cpuUsPerSample: number;
    cpuUsPerSampleByPart: Record<string, number>;
    cpuMsByThread: Record<string, number>;
    avgCoresBusy: number;
    startRssMB: number;
    peakRssMB: number;
    rssMBOverTime: number[];
    stopMs: number;
    exitCode: number | null;
    /** Errors the product logged during the round, by message, with counts. */
    loggedErrors: Array<{ count: number; message: string }>;
    /** Separate ingest processes (--ingest-processes): CPU and peak RSS of each, included in the figures above (RSS: not). */
    ingestProcesses: Array<{ cpuUsPerSample: number; peakRssMB: number }>;
  };
  /** Cores busy on the whole machine, used by the shared Redis, and by anything not ours. */
  machine: { busyCores: number; redisCores: number; othersBusyCores: number; quiet: QuietCheck };
  redis: { peakUsedMemoryDeltaMB: number; peakQueueWaiting: number };
  /** The product's own /metrics at the end of the round (whole run, start included). */
  product: ProductMetrics;
  freshness?: FreshnessResult;
  accountProbe?: AccountProbeResult;
  prefill?: PrefillResult & { hourStartMs: number };
}

export interface PrefillResult {
  rows: number;
  seconds: number;
  countedSamplesView: { ms: number; peakExtraMB: number };
  narrowDedup: { ms: number; peakExtraMB: number };
  /** The last acceptance sequence of the prefilled rows, and the time to aggregate them. */
  maxSeq: number;
  aggregateSeconds: number;
}

export interface ProductMetrics {
  batchesWritten: number;
  rowsWritten: number;
  /** Time inside the batch writer (insert + Redis), summed over jobs: jobs overlap. */
  batchWriteSeconds: number;
  /** Whole-hour recomputations and the time they took (one at a time). */
  rollupHours: number;
  rollupSeconds: number;
  /** Fold rounds (new batches added to the aggregates), their time and rows. */
  foldRounds: number;
  foldSeconds: number;
  rowsFolded: number;
  /** Inserts into the raw table (coalesced batches). */
  rawInserts: number;
}

async function scrapeMetrics(url: string): Promise<ProductMetrics> {
  const text = await fetch(`${url}/metrics`).then((r) => r.text(), () => '');
  const v = (name: string) => Number(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return {
    batchesWritten: v('um_batches_written_total'),
    rowsWritten: v('um_raw_rows_written_total'),
    batchWriteSeconds: v('um_batch_write_seconds_sum'),
    rollupHours: v('um_rollup_hour_seconds_count'),
    rollupSeconds: v('um_rollup_hour_seconds_sum'),
    foldRounds: v('um_rollup_fold_seconds_count'),
    foldSeconds: v('um_rollup_fold_seconds_sum'),
    rowsFolded: v('um_rows_folded_total'),
    rawInserts: v('um_raw_inserts_total'),
  };
}

export async function runRound(o: RoundOptions): Promise<RoundResult> {
  const prefix = `umbench-${o.runId}-${o.name}`;
  const dataDir = o.dataDir ?? path.join(o.workDir, prefix);
  const prefilled = o.prefill ? await prefillHour(dataDir, o.prefill, o.log) : undefined;
  if (prefilled) {
    // As if the product had accepted and folded the prefilled rows itself: its batches
    // continue the acceptance sequence, and its fold starts after them.
    const k = redisKeys(prefix);
    const r = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
    await r.mset(k.batchSeq, prefilled.maxSeq, k.foldWatermark, prefilled.maxSeq, k.foldedThrough, prefilled.maxSeq);
    r.disconnect();
  }
  const redisPid = await localRedisPid();
  const quiet = await beforeRound(o.log, redisPid ? [redisPid] : []);
  const server = await startProduct({ dataDir, prefix, ingestProcesses: o.ingestProcesses ?? 0, ...(o.env ? { env: o.env } : {}) });
  const ingestPids = server.ingest.map((p) => p.pid);
  // Where producers post: the separate ingest process when there is one.
  const ingestUrl = server.ingest[0]?.url ?? server.url;
  const keys = redisKeys(prefix);
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2 });
  let aborted: string | undefined;
  let dead = false;
  void server.exited.then(() => {
    dead = true;
  });
  // Last good readings of the product, for when it is gone by the time the round ends.
  const last = { cpuMs: 0, threads: {} as Record<string, number>, hwmMB: 0 };
  const guard = setInterval(() => {
    if (dead) return;
    try {
      const m = memStatus(server.pid);
      last.hwmMB = m.vmHWMkB / 1024;
      last.cpuMs = processCpuMs(server.pid);
      last.threads = threadCpuMs(server.pid);
      if (m.vmRSSkB / 1024 > o.maxServerRssMB && !aborted) {
        aborted = `the product's RSS reached ${Math.round(m.vmRSSkB / 1024)} MB, above the ${o.maxServerRssMB} MB safety cap: killed`;
        o.log(`  ${o.name}: ${aborted}`);
        process.kill(server.pid, 'SIGKILL');
      }
    } catch {
      // the product just exited
    }
  }, 500);
  const gone = () => dead || aborted !== undefined;
  try {
    const startRssMB = memStatus(server.pid).vmRSSkB / 1024;
    const baseMem = await usedMemory(redis);
    let peakMem = baseMem;
    let peakWaiting = 0;
    const sampler = setInterval(() => {
      void Promise.all([usedMemory(redis), redis.llen(`${keys.bullPrefix}:batches:wait`)])
        .then(([m, w]) => {
          peakMem = Math.max(peakMem, m);
          peakWaiting = Math.max(peakWaiting, w);
        })
        .catch(() => undefined);
    }, 500);

    let watch: ProcessWatch | undefined;
    let threads0: Record<string, number> = {};
    let cpu0 = 0;
    let ingestCpu0: number[] = [];
    let probe: ReturnType<typeof startFreshnessProbe> | undefined;
    let accountProbe: ReturnType<typeof startAccountProbe> | undefined;
    const spec = typeof o.spec === 'function' ? o.spec() : o.spec;
    const args = ['--url', ingestUrl, '--key', server.keys.producer, '--spec', JSON.stringify(spec), '--mode', o.mode, '--concurrency', String(o.concurrency)];
    if (o.rate) args.push('--rate', String(Math.round(o.rate)));
    const lg = runStage<LoadgenResult>('bench/stages/loadgen.ts', args, {
      timeoutMs: 30 * 60_000,
      onLine: (line) => {
        if (line.startsWith('START ')) {
          threads0 = threadCpuMs(server.pid);
          cpu0 = processCpuMs(server.pid);
          ingestCpu0 = ingestPids.map((pid) => processCpuMs(pid));
          watch = new ProcessWatch({
            ...Object.fromEntries(ingestPids.map((pid, i) => [`ingest${i}`, pid])),
            server: server.pid, loadgen: lg.child.pid as number, orchestrator: process.pid, ...(redisPid ? { redis: redisPid } : {}),
          }).start();
          if (o.probe) {
            probe = startFreshnessProbe({
              url: server.url, ingestUrl, producerKey: server.keys.producer, billingKey: server.keys.billing,
              account: `zz-marker-${prefix}`, everyMs: 200, pollPauseMs: 20,
            });
          }
          if (o.accountProbe) accountProbe = startAccountProbe({ url: server.url, billingKey: server.keys.billing, ...o.accountProbe });
          o.log(`  ${o.name}: load started`);
        }
      },
    });
    const loadgen = await lg.result;
    const accountProbeResult = await accountProbe?.stop(); // the load's span only
    o.log(`  ${o.name}: load sent in ${loadgen.sendSeconds.toFixed(1)} s, waiting for complete…`);
    const freshnessP = probe?.stop(o.probeGraceMs ?? 60_000, gone);

    let completeAtMs: number | null = null;
    let idleAtMs: number | null = null;
    const deadline = Date.now() + o.idleTimeoutMs;
    while (Date.now() < deadline && !gone()) {
      if (completeAtMs === null && (await isComplete(redis, keys, 0, Number.MAX_SAFE_INTEGER))) completeAtMs = Date.now();
      if (completeAtMs !== null && (await isIdle(redis, keys))) {
        idleAtMs = Date.now();
        break;
      }
      await sleep(50);
    }
    const freshness = await freshnessP;
    if (dead && !aborted) aborted = 'the product exited during the round';
    if (idleAtMs === null && !aborted) aborted = `not complete within ${Math.round(o.idleTimeoutMs / 1000)} s of the last 202`;
    // A probe still pending keeps its hour dirty: the idle time above is the load's.
    const alive = <T>(read: () => T, fallback: T): T => {
      try {
        return read();
      } catch {
        return fallback;
      }
    };
    // The product's CPU: the engine's process and any separate ingest processes.
    const ingestCpuMs = ingestPids.map((pid, i) => alive(() => processCpuMs(pid), 0) - (ingestCpu0[i] ?? 0));
    const ingestPeakRssMB = ingestPids.map((pid) => alive(() => memStatus(pid).vmHWMkB / 1024, 0));
    const cpuMs = alive(() => processCpuMs(server.pid), last.cpuMs) - cpu0 + ingestCpuMs.reduce((a, b) => a + b, 0);
    const byThread = diffThreadCpu(threads0, alive(() => threadCpuMs(server.pid), last.threads));
    const peakRssMB = alive(() => memStatus(server.pid).vmHWMkB / 1024, last.hwmMB);
    const w = watch?.stop();
    clearInterval(sampler);
    clearInterval(guard);
    const product = await scrapeMetrics(server.url);
    const stopped = await server.stop();

    const samples = loadgen.accepted;
    const e2eSeconds = completeAtMs === null ? null : (completeAtMs - loadgen.firstPostAtMs) / 1000;
    const result: RoundResult = {
      name: o.name,
      loadgen,
      e2eSeconds,
      samplesPerS: e2eSeconds ? samples / e2eSeconds : null,
      drainSeconds: completeAtMs === null ? null : (completeAtMs - loadgen.lastAckAtMs) / 1000,
      analyticsLagSeconds: completeAtMs === null || idleAtMs === null ? null : (idleAtMs - completeAtMs) / 1000,
      server: {
        cpuUsPerSample: (cpuMs * 1000) / samples,
        cpuUsPerSampleByPart: Object.fromEntries(Object.entries(groupThreads(byThread)).map(([k, ms]) => [k, (ms * 1000) / samples])),
        cpuMsByThread: byThread,
        avgCoresBusy: w ? cpuMs / w.wallMs : Number.NaN,
        startRssMB,
        peakRssMB,
        rssMBOverTime: downsample((w ? watch?.rssSeries ?? [] : []).map((s) => s.rssMB.server ?? Number.NaN), 20),
        stopMs: stopped.stopMs,
        exitCode: stopped.code,
        loggedErrors: loggedErrors(server.logFile),
        ingestProcesses: ingestCpuMs.map((ms, i) => ({ cpuUsPerSample: (ms * 1000) / samples, peakRssMB: ingestPeakRssMB[i] ?? 0 })),
      },
      machine: {
        busyCores: w?.machineBusyCores ?? Number.NaN,
        redisCores: w && redisPid ? (w.cpuMs.redis ?? Number.NaN) / w.wallMs : Number.NaN,
        othersBusyCores: w?.othersBusyCores ?? Number.NaN,
        quiet,
      },
      redis: { peakUsedMemoryDeltaMB: (peakMem - baseMem) / 2 ** 20, peakQueueWaiting: peakWaiting },
      product,
    };
    if (freshness) result.freshness = freshness;
    if (accountProbeResult) result.accountProbe = accountProbeResult;
    if (prefilled) result.prefill = prefilled;
    if (aborted) result.aborted = aborted;
    return result;
  } finally {
    clearInterval(guard);
    redis.disconnect();
    await server.stop().catch(() => undefined);
    await deleteRedisKeys(prefix).catch((err: unknown) => o.log(`  could not delete Redis keys ${prefix}:*: ${String(err)}`));
    if (!o.keepData && !o.dataDir) rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * Fills the current hour before the product starts (it owns the data directory once it
 * runs). If the load would cross into the next hour, waits for that hour first.
 */
async function prefillHour(dataDir: string, p: NonNullable<RoundOptions['prefill']>, log: (s: string) => void) {
  const HOUR = 3_600_000;
  const left = HOUR - (Date.now() % HOUR);
  // Prefill, start and load must all fall in one hour: about 2 minutes plus the load.
  const needed = p.loadSeconds * 1000 + 120_000 + (p.ratePerS * p.minutes * 60) / 2000;
  if (left < needed) {
    log(`  waiting ${Math.ceil(left / 1000)} s for the next hour, so the load stays in the prefilled hour`);
    await sleep(left + 2000);
  }
  const hourStartMs = Math.floor(Date.now() / HOUR) * HOUR;
  const r = await runStage<PrefillResult>('bench/stages/prefill.ts', [
    '--data-dir', dataDir, '--rate', String(Math.round(p.ratePerS)), '--minutes', String(p.minutes), '--hour-start-ms', String(hourStartMs),
  ], { timeoutMs: 30 * 60_000 }).result;
  log(`  prefilled the current hour with ${r.rows.toLocaleString('en')} samples (${p.minutes} min at ${Math.round(p.ratePerS).toLocaleString('en')}/s) in ${r.seconds.toFixed(1)} s; ` +
    `billing.counted_samples over it: ${(r.countedSamplesView.ms / 1000).toFixed(1)} s, +${Math.round(r.countedSamplesView.peakExtraMB)} MB ` +
    `(key columns only: ${(r.narrowDedup.ms / 1000).toFixed(1)} s, +${Math.round(r.narrowDedup.peakExtraMB)} MB); aggregated with rollupHour in ${r.aggregateSeconds.toFixed(1)} s`);
  return { ...r, hourStartMs };
}

/** The product's error-level log lines (pino JSON), grouped by message. */
function loggedErrors(file: string): Array<{ count: number; message: string }> {
  const counts = new Map<string, number>();
  try {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const e = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
        if ((e.level ?? 0) < 50) continue;
        // Numbers vary between occurrences (sizes, ids): strip them to group.
        const m = `${e.msg ?? ''}: ${(e.err?.message ?? '').slice(0, 160)}`.replace(/[0-9][0-9.]*/g, 'N');
        counts.set(m, (counts.get(m) ?? 0) + 1);
      } catch {
        // not a log record
      }
    }
  } catch {
    // no log
  }
  return [...counts].map(([message, count]) => ({ count, message })).sort((a, b) => b.count - a.count).slice(0, 5);
}

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

function downsample(xs: number[], n: number): number[] {
  if (xs.length <= n) return xs.map((x) => Math.round(x));
  return Array.from({ length: n }, (_, i) => Math.round(xs[Math.floor((i * (xs.length - 1)) / (n - 1))] as number));
}
