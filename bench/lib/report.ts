/**
 * Turns the stage results into the verdicts (PASS / MISS per target in issues 6 and 13, with the
 * measured figure and the bottleneck the numbers point at) and a short Markdown table.
 */
import type { EngineSummary } from '../drivers/engine.js';
import type { E2eSummary } from '../drivers/e2e.js';
import type { HistorySummary } from '../drivers/history.js';
import type { LatencySummary } from '../drivers/latency.js';
import type { MicroResult } from '../stages/micro.js';
import type { MachineInfo } from './machine.js';
import { fmt, fmtSpread, spread, type Spread } from './stats.js';

export interface BenchResults {
  schema: 'usage-meter-bench/1';
  startedAt: string;
  finishedAt: string;
  command: string;
  argv: string[];
  options: Record<string, unknown>;
  machine: MachineInfo;
  notes: string[];
  micro?: MicroResult;
  engine?: EngineSummary;
  engineNative?: EngineSummary;
  /** The same rows in 1,000-row inserts: one insert per HTTP batch, as the worker does. */
  engineSmall?: EngineSummary;
  e2e?: E2eSummary & { e2eHours: number };
  latency?: { live?: LatencySummary; steady?: LatencySummary; replay?: LatencySummary };
  history?: HistorySummary;
  targets: TargetCheck[];
  bottlenecks: string[];
}

export interface TargetCheck {
  target: string;
  measured: string;
  status: 'PASS' | 'MISS' | 'NOT MEASURED';
  bottleneck: string;
}

const label = (l: LatencySummary) => `${l.workload}${l.prefillMinutes ? `, hour prefilled with ${l.prefillMinutes} min` : ''}`;
const millions = (n: number) => `${fmt(n / 1e6, n < 1e6 ? 2 : n < 1e7 ? 1 : 0)}M`;
const verdict = (ok: boolean | undefined): TargetCheck['status'] => (ok === undefined ? 'NOT MEASURED' : ok ? 'PASS' : 'MISS');
const has = (s: Spread | undefined | null): s is Spread => !!s && Number.isFinite(s.median);

/** The parts of the server's CPU per sample, largest first: "a 12.3, b 4.5". */
function parts(p: Record<string, number>): string {
  return Object.entries(p).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v.toFixed(1)}`).join(', ');
}

export function analyse(r: BenchResults): { targets: TargetCheck[]; bottlenecks: string[] } {
  const t: TargetCheck[] = [];
  const b: string[] = [];
  const e2e = r.e2e;
  const eng = r.engine;
  const live = r.latency?.live;
  const replay = r.latency?.replay;
  const steady = r.latency?.steady;
  const pre = steady?.rounds.find((x) => x.prefill)?.prefill;

  // Where the end-to-end time goes.
  let e2eWhy = 'not measured';
  if (e2e && eng) {
    const rollupShare = e2e.rollupShareOfWall.median;
    const serverCores = e2e.serverAvgCoresBusy.median;
    const insertUs = eng.cpuUsPerRow.median;
    e2eWhy =
      `${fmt(serverCores, 2)} of ${r.machine.cores} cores busy in the server at ${fmt(e2e.serverCpuUsPerSample.median, 1)} CPU-µs/sample ` +
      `(${parts(e2e.serverCpuUsPerSampleByPart)}) against ${fmt(insertUs, 1)} for the engine alone to insert a row; ` +
      `inserts averaged ${fmt(e2e.rowsPerInsert.median)} rows (coalesced batches); rollup rounds were in progress ${fmt(rollupShare * 100)} % of the run, their statements queued with the inserts in the pipeline's engine session (one statement at a time) ` +
      `(${fmt(e2e.foldRounds.median)} fold rounds of ${fmt(e2e.foldRoundMs.median)} ms on average, ${fmt(e2e.rollupHours.median)} whole-hour recomputations)`;
    b.push(`Throughput: ${e2eWhy}.`);
    const cores = r.machine.cores;
    const budget = (cores * 1e6) / 100_000;
    const loadgen = e2e.loadgenCpuUsPerSample.median;
    const busy = spread(e2e.rounds.map((x) => x.machine.busyCores)).median;
    const others = e2e.othersBusyCores.median;
    b.push(
      `CPU budget: ${cores} cores at 100,000 samples/s leave ${fmt(budget, 0)} CPU-µs per sample for everything (the load generator took ${fmt(loadgen, 1)}); ` +
        `the server used ${fmt(e2e.serverCpuUsPerSample.median, 1)}, the engine alone needs ${fmt(eng.cpuUsPerRow.median, 1)} to insert a row through the product's path ` +
        `(and ${fmt(eng.rollupCpuUsPerRow?.median ?? Number.NaN, 1)} per pass of a whole-hour recomputation, now only for late batches). The machine was ${fmt(busy, 2)} of ${cores} cores busy, ${fmt(others, 2)} of them by other work` +
        (busy >= cores * 0.9 ? ': the run was CPU-bound.' : '.'),
    );
  }
  const anatomy = eng?.rounds.find((x) => x.rollup)?.rollup;
  if (anatomy) {
    b.push(
      `Whole-hour recomputation anatomy (late batches and period close only; stage 1, ${fmt(anatomy.rowsPerHour)}-row hours, ${fmt(anatomy.hourMs.p50)} ms an hour): time by statement ` +
        Object.entries(anatomy.statementShare).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${fmt(v * 100)} %`).join(', ') +
        `; billing.counted_samples alone over the largest hour ${fmt(anatomy.countedSamplesViewMs)} ms, the same first-copy rule on key columns only ${fmt(anatomy.narrowDedupMs)} ms.`,
    );
  }
  if (pre && steady) {
    b.push(
      `A production-sized hour (steady: ${fmt(pre.rows)} samples, ${steady.prefillMinutes} min at ${fmt(steady.offeredRatePerS)}/s): billing.counted_samples alone took ` +
        `${fmt(pre.countedSamplesView.ms / 1000, 1)} s and +${fmt(pre.countedSamplesView.peakExtraMB)} MB; the same first-copy rule on the key columns only ` +
        `${fmt(pre.narrowDedup.ms / 1000, 1)} s and +${fmt(pre.narrowDedup.peakExtraMB)} MB: what recomputing that hour whole would cost each time. ` +
        `Folding instead reads only the new rows and two 8-byte hashes of the hour: fold rounds took ${fmt(steady.foldRoundMs.median)} ms on average ` +
        `(${fmt(steady.rollupHours.median)} whole-hour recomputations); freshness p50 ${fmt(steady.freshnessP50Ms.median / 1000, 1)} s, usage API p99 ${fmt(steady.usageApiP99Ms.median)} ms, ` +
        `product peak RSS ${fmt(steady.serverPeakRssMB.max)} MB.`,
    );
  }
  if (eng && r.engineSmall && has(r.engineSmall.rowsPerS)) {
    b.push(
      `Insert size (why the worker coalesces its jobs' batches: ${e2e ? `${fmt(e2e.rowsPerInsert.median)} rows per insert in stage 2` : 'see stage 2'}): the same rows in ${fmt(r.engineSmall.rowsPerInsert)}-row inserts ran at ` +
        `${fmt(r.engineSmall.rowsPerS.median)} rows/s (${fmt(r.engineSmall.cpuUsPerRow.median, 1)} CPU-µs/row, merges ${fmt(r.engineSmall.cpuUsPerRowByThread['ClickHouse background merges'] ?? Number.NaN, 1)}) ` +
        `vs ${fmt(eng.rowsPerS.median)} rows/s (${fmt(eng.cpuUsPerRow.median, 1)}, merges ${fmt(eng.cpuUsPerRowByThread['ClickHouse background merges'] ?? Number.NaN, 1)}) in ${fmt(eng.rowsPerInsert)}-row inserts.`,
    );
  }
  if (eng && r.engineNative && has(r.engineNative.rowsPerS)) {
    b.push(
      `Insert path: the product's insertNdjson (embedded: chdb's own insert of the payload bytes, the client's exec path only to report a refusal's error type) ` +
        `(${fmt(eng.rowsPerS.median)} rows/s, ${fmt(eng.cpuUsPerRow.median, 1)} CPU-µs/row); chdb's rawInsert called directly on the same bytes ` +
        `did ${fmt(r.engineNative.rowsPerS.median)} rows/s at ${fmt(r.engineNative.cpuUsPerRow.median, 1)} CPU-µs/row ` +
        `(×${fmt(r.engineNative.rowsPerS.median / eng.rowsPerS.median, 2)}).`,
    );
  }
  if (r.micro) {
    const m = r.micro.cpuUsPerSample;
    b.push(
      `Ingest JS per sample (microbenchmarks, CPU-µs): JSON.parse ${fmt(m.json_parse.median, 1)}, parseSample (zod) ${fmt(m.parse_validate.median, 1)}, ` +
        `toBatchJob ${fmt(m.to_batch_job.median, 1)}, enqueue ${fmt(m.enqueue.median, 1)}, worker fetch ${fmt(m.worker_fetch.median, 1)}; ` +
        `the job payload is ${fmt(r.micro.jobPayloadBytesPerSample)} B/sample (${fmt(r.micro.redisJobMemoryBytesPerSample ?? Number.NaN)} B in Redis), ` +
        `so MAX_QUEUED_BATCHES=1000 batches of 1,000 can hold ~${fmt(((r.micro.redisJobMemoryBytesPerSample ?? 0) * 1e6) / 2 ** 20)} MB of Redis.`,
    );
  }

  for (const x of [e2e, live, steady, replay]) {
    for (const a of x?.aborted ?? []) b.push(`Round ${a.round} was aborted: ${a.reason}. The product logged: ${a.loggedErrors.map((e) => `${e.count}× "${e.message}"`).join(', ') || 'nothing'}.`);
  }
  if (e2e) {
    t.push({
      target: 'End-to-end ≥ 100,000 samples/s sustained (POST → complete)',
      measured: `${fmtSpread(e2e.samplesPerS)} samples/s`,
      status: verdict(e2e.samplesPerS.median >= 100_000),
      bottleneck: e2eWhy,
    });
  }
  // Issue 13 measures against the engine's own native insert of the same rows (1b).
  const native = r.engineNative && has(r.engineNative.rowsPerS) ? r.engineNative : eng;
  if (e2e && native) {
    const ratio = e2e.samplesPerS.median / native.rowsPerS.median;
    t.push({
      target: `End-to-end ≥ 0.5 × the engine's ${native === eng ? 'insert through the product path (1b not run)' : 'native insert (chdb rawInsert, 1b)'} of the same rows (same run)`,
      measured: `${fmt(ratio, 2)} × (${fmt(e2e.samplesPerS.median)} / ${fmt(native.rowsPerS.median)} rows/s)`,
      status: verdict(ratio >= 0.5),
      bottleneck: e2eWhy,
    });
  }
  const lat = live ?? steady ?? replay;
  if (lat) {
    for (const l of [live, steady, replay].filter((x): x is LatencySummary => !!x)) {
      // µs per sample × 1,000 samples a request = ms per request.
      const perRequestMs = r.micro ? r.micro.cpuUsPerSample.json_parse.median + r.micro.cpuUsPerSample.accept_total.median : Number.NaN;
      t.push({
        target: `p99 ingest (202) latency ≤ 50 ms at ½ max load, first 5 s included [${label(l)}, ${fmt(l.offeredRatePerS)} samples/s offered]`,
        measured: `p99 ${fmtSpread(l.ingestP99Ms, 0, ' ms')} (${fmt(l.ingestP99AfterWarmupMs.median)} ms without the first 5 s), p50 ${fmt(l.ingestP50Ms.median)} ms`,
        status: verdict(l.ingestP99Ms.median <= 50),
        bottleneck: l.ingestP99Ms.median <= 50 ? '' :
          (r.micro ? `before answering, the main thread spends ~${fmt(perRequestMs, 1)} ms of CPU on each 1,000-sample request (JSON.parse + parseSample + toBatchJob + enqueue, stage 7), then waits on Redis (INCR, ZADD, BullMQ add of ~${fmt(r.micro.jobPayloadBytesPerSample)} B/sample); ` : '') +
          `p99 adds queueing behind other requests and the worker's job handling on the same event loop, and the first seconds of a fresh process (p99 per 5 s window: ` +
          `${(l.rounds[0]?.loadgen.p99ByWindowMs ?? []).map((x) => fmt(x)).join(' → ')} ms); server ${fmt(l.serverAvgCoresBusy.median, 2)} cores busy, other work ${fmt(l.othersBusyCores.median, 2)}`,
      });
      t.push({
        target: `p99 freshness (202 → visible in usage API) ≤ 1 s [${label(l)}]`,
        measured: `p99 ${fmtSpread(l.freshnessP99Ms, 0, ' ms')}, p50 ${fmt(l.freshnessP50Ms.median)} ms; p50 by third of the run ${l.freshnessP50ByThirdMs.map((x) => fmt(x)).join(' → ')} ms` +
          (l.freshnessNotVisible.median > 0 ? `; ${fmt(l.freshnessNotVisible.median)} probes never visible (counted at the moment the wait ended)` : '') +
          l.aborted.map((a) => `; ${a.round} ABORTED: ${a.reason}; the product logged ${a.loggedErrors.map((e) => `${e.count}× "${e.message}"`).join(', ') || 'nothing'}`).join(''),
        status: verdict(l.freshnessP99Ms.median <= 1000 && l.freshnessNotVisible.median === 0),
        bottleneck: l.freshnessP99Ms.median <= 1000 ? '' :
          `a sample is visible once its batch is written and the next rollup round (every ROLLUP_INTERVAL_MS) folds it in: fold rounds took ` +
          `${fmt(l.foldRoundMs.median)} ms on average, ${fmt(l.rollupHours.median)} whole-hour recomputations; the fold's statements queue with the batch writer's inserts in the pipeline's engine session (one statement at a time); ` +
          `usage API p99 under this load ${fmt(l.usageApiP99Ms.median)} ms`,
      });
    }
  }

  // Issue 13: the account query while ingest runs at half load (stage 4b, the latency
  // stage's own small store; stage 5's large stores are measured on an idle pipeline).
  for (const l of [live, steady, replay].filter((x): x is LatencySummary => !!x)) {
    t.push({
      target: `Account usage p99 ≤ 20 ms while ingest runs at ½ max load [${label(l)}; the store holds only that run's samples, not 100M]`,
      measured: `p99 ${fmtSpread(l.usageApiP99Ms, 1, ' ms')}, p50 ${fmt(l.usageApiP50Ms.median, 1)} ms`,
      status: verdict(l.usageApiP99Ms.median <= 20),
      bottleneck: l.usageApiP99Ms.median <= 20 ? '' :
        `the API reads on an engine session of its own, no longer queued behind the batch writer's inserts and the fold rounds (${fmt(l.foldRoundMs.median)} ms on average), ` +
        `and the pipeline's integer parameters are literals, off chdb's process-wide lock for bound parameters; what remains was not isolated further: ` +
        `the 2 cores are shared with ingest, inserts, fold rounds and merges (server ${fmt(l.serverAvgCoresBusy.median, 2)} cores busy); ` +
        `on an idle pipeline the same route answers in ${r.history?.scales.at(-1) ? `${fmt(r.history.scales.at(-1)!.accountQueryMs.p99, 1)} ms p99 at ${millions(r.history.scales.at(-1)!.storedSamples)} samples (stage 5)` : 'a few ms'}`,
    });
  }

  const hist = r.history?.scales ?? [];
  const top = hist.at(-1);
  if (top) {
    const at100m = top.storedSamples >= 0.95e8;
    const first = hist[0]!;
    const growth = top.accountQueryMs.p50 / first.accountQueryMs.p50;
    const dataGrowth = top.storedSamples / first.storedSamples;
    t.push({
      target: 'Account 30-day usage p99 ≤ 20 ms at ≥ 100M stored samples, on an idle pipeline (under half-load ingest: the next row)',
      measured: `p99 ${fmt(top.accountQueryMs.p99, 1)} ms at ${millions(top.storedSamples)} samples` + (at100m ? '' : ' (100M not run: pass --scales …,1e8)'),
      status: at100m ? verdict(top.accountQueryMs.p99 <= 20) : 'NOT MEASURED',
      bottleneck:
        hist.map((h) => `${millions(h.storedSamples)}: p50 ${fmt(h.accountQueryMs.p50, 1)} / p99 ${fmt(h.accountQueryMs.p99, 1)} ms`).join(', ') +
        `: nearly flat, so the cost is per request (the route's queries run one after another, each with the engine's fixed query overhead, ` +
        `usage through FINAL), not per stored sample`,
    });
    const u = r.history?.underLoad;
    t.push({
      target: 'Account 30-day usage p99 ≤ 20 ms at ≥ 100M stored samples while ingest runs at ½ max load (stage 5b)',
      measured: u?.accountProbe
        ? `p99 ${fmt(u.accountProbe.usageMs.p99, 1)} ms, p50 ${fmt(u.accountProbe.usageMs.p50, 1)} ms at ${millions(u.storedSamples)} samples, ${fmt(u.ratePerS)} samples/s offered` +
          (u.aborted ? `; ABORTED: ${u.aborted}` : '')
        : 'not run (needs the history stage with the e2e stage or --rate)',
      status: u?.accountProbe && u.storedSamples >= 0.95e8 && !u.aborted ? verdict(u.accountProbe.usageMs.p99 <= 20) : 'NOT MEASURED',
      bottleneck: !u?.accountProbe || u.accountProbe.usageMs.p99 <= 20 ? '' :
        `the same query answers in ${fmt(top.accountQueryMs.p99, 1)} ms p99 on the idle store; under load it runs on the API's own engine session, ` +
        `beside the pipeline's inserts and fold rounds and the ingest path, on 2 cores (server ${fmt(u.serverAvgCoresBusy, 2)} cores busy; 202 p99 ${fmt(u.ingestP99Ms)} ms)`,
    });
    if (hist.length > 1) {
      t.push({
        target: 'Account usage latency grows sub-linearly with stored samples',
        measured: `p50 ×${fmt(growth, 2)} for ×${fmt(dataGrowth, 0)} data`,
        status: verdict(growth < dataGrowth),
        bottleneck: '',
      });
    }
  }
  const peaks = [e2e, live, steady, replay].map((x) => x?.serverPeakRssMB.max).filter((x): x is number => Number.isFinite(x));
  const peak = peaks.length ? Math.max(...peaks) : Number.NaN;
  if (e2e) {
    t.push({
      target: "Peak RSS of the engine's process ≤ 1.5 GB at full load",
      // Every other process's peak is in the figures table (load generator, separate ingest processes).
      measured: `${fmtSpread(e2e.serverPeakRssMB, 0, ' MB')} at max load (stage 2)` +
        [live, steady, replay].filter((x): x is LatencySummary => !!x).map((x) => `; ${fmt(x.serverPeakRssMB.max)} MB [${label(x)}]`).join(''),
      status: verdict(peak <= 1536),
      bottleneck: peak <= 1536 ? '' :
        `peak ${fmt(peak)} MB` + (pre ? ` (for comparison, billing.counted_samples over the steady round's ${fmt(pre.rows)}-sample hour alone takes +${fmt(pre.countedSamplesView.peakExtraMB)} MB: a whole-hour recomputation)` : ''),
    });
  }
  return { targets: t, bottlenecks: b };
}

export function markdown(r: BenchResults): string {
  const m = r.machine;
  const lines: string[] = [];
  lines.push(`# usage-meter benchmark — ${r.startedAt.slice(0, 10)} @ ${m.git.short}${m.git.dirty ? ' (uncommitted changes)' : ''}`);
  lines.push('');
  lines.push(`Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGB} GB; ${m.os}. Node ${m.node}, chdb ${m.packages.chdb} (ClickHouse ${m.clickhouse ?? '?'}), ` +
    `@clickhouse/client ${m.packages['@clickhouse/client']}, BullMQ ${m.packages.bullmq}, Redis ${m.redis}. Load average at start ${m.loadAverageAtStart.join(' ')}.`);
  lines.push('');
  lines.push(`Command: \`${r.command}\` (${r.startedAt} → ${r.finishedAt})`);
  lines.push('');
  for (const n of r.notes) lines.push(`> ${n}`);
  lines.push('');
  lines.push('| # | figure | median (spread over rounds) |');
  lines.push('|---|---|---|');
  const row = (n: string, k: string, v: string) => lines.push(`| ${n} | ${k} | ${v} |`);
  if (r.engine) {
    row('1', 'engine limit: insertNdjson, 10k-row batches, rows/s', fmtSpread(r.engine.rowsPerS));
    if (r.engineNative) row('1b', "same rows via chdb rawInsert called directly (the engine's native insert), rows/s", fmtSpread(r.engineNative.rowsPerS));
    if (r.engineSmall) row('1d', `same rows via insertNdjson in ${fmt(r.engineSmall.rowsPerInsert)}-row inserts (the worker's size), rows/s`, fmtSpread(r.engineSmall.rowsPerS));
    if (r.engine.rollupRowsPerS) row('1c', 'rollupHour once per hour, raw rows/s', fmtSpread(r.engine.rollupRowsPerS));
  }
  if (r.e2e) {
    row('2', `end to end, ${fmt(r.e2e.samples)} samples, first POST → complete, samples/s`, fmtSpread(r.e2e.samplesPerS));
    if (r.engine) row('2b', 'ratio end to end / engine limit', fmt(r.e2e.samplesPerS.median / r.engine.rowsPerS.median, 2));
    if (r.engineNative) row('2g', "ratio end to end / the engine's native insert (1b)", fmt(r.e2e.samplesPerS.median / r.engineNative.rowsPerS.median, 2));
    row('2c', 'acknowledged (202) rate at max load, samples/s', fmtSpread(r.e2e.ackRatePerS));
    row('2d', 'drain after the last 202 until complete, s', fmtSpread(r.e2e.drainSeconds, 1));
    if (r.e2e.analyticsLagSeconds) row('2f', 'analytics caught up after complete (not counted in 2), s', fmtSpread(r.e2e.analyticsLagSeconds, 1));
    row('2e', 'other work on the machine during 2 (not ours, not Redis), cores', fmtSpread(r.e2e.othersBusyCores, 2));
  }
  for (const l of [r.latency?.live, r.latency?.steady, r.latency?.replay]) {
    if (!l) continue;
    row('3', `ingest 202 latency p50 / p99 [${label(l)}, ${fmt(l.offeredRatePerS)}/s offered; other work ${fmt(l.othersBusyCores.median, 2)} cores], ms`, `${fmtSpread(l.ingestP50Ms)} / ${fmtSpread(l.ingestP99Ms)}`);
    row('4', `freshness p50 / p99 [${label(l)}], ms`, `${fmtSpread(l.freshnessP50Ms)} / ${fmtSpread(l.freshnessP99Ms)}`);
    row('4b', `usage API latency under that load p50 / p99 [${label(l)}], ms`, `${fmtSpread(l.usageApiP50Ms, 1)} / ${fmtSpread(l.usageApiP99Ms, 1)}`);
  }
  for (const h of r.history?.scales ?? []) {
    row('5', `${millions(h.storedSamples)} stored: account 30-day usage (GET /v1/accounts/:a/usage) p50 / p99, ms`, `${fmt(h.accountQueryMs.p50, 1)} / ${fmt(h.accountQueryMs.p99, 1)} (n=${h.accountQueryMs.n})`);
    row('5', `${millions(h.storedSamples)} stored: full-period export (${h.exportVia}${h.exportPages ? `, ${h.exportPages} page${h.exportPages > 1 ? 's' : ''}` : ''}), ${fmt(h.exportRecords)} records, p50 / p99, ms`, `${fmt(h.exportMs.p50)} / ${fmt(h.exportMs.p99)} (n=${h.exportMs.n})`);
    row('5', `${millions(h.storedSamples)} stored: rollupHour of one ${fmt(h.samplesPerHour)}-sample hour p50, ms`, fmt(h.rollupHourMs.p50));
  }
  const u = r.history?.underLoad;
  if (u?.accountProbe) {
    row('5b', `${millions(u.storedSamples)} stored, ingest at ${fmt(u.ratePerS)}/s offered (${fmt(u.achievedAckRatePerS)}/s acknowledged): account 30-day usage p50 / p99, ms`,
      `${fmt(u.accountProbe.usageMs.p50, 1)} / ${fmt(u.accountProbe.usageMs.p99, 1)} (n=${u.accountProbe.usageMs.n}, ${u.accountProbe.errors} errors)`);
  }
  if (r.e2e) {
    row('6', "peak RSS, the engine's process (all roles, or workers + API with --ingest-processes) at full load, MB", fmtSpread(r.e2e.serverPeakRssMB));
    const ingestRss = r.e2e.rounds.flatMap((x) => (x.server.ingestProcesses ?? []).map((p) => p.peakRssMB));
    if (ingestRss.length) row('6', `peak RSS, each separate ingest process (${r.e2e.rounds[0]?.server.ingestProcesses?.length ?? 0}), MB`, fmtSpread(spread(ingestRss)));
    row('6', 'peak RSS, load generator (holds its pre-built bodies), MB', fmtSpread(r.e2e.loadgenPeakRssMB));
    row('6', 'peak Redis memory growth during the run, MB', fmtSpread(r.e2e.redisPeakDeltaMB));
  }
  if (r.micro) {
    const c = r.micro.cpuUsPerSample;
    row('7', 'CPU-µs/sample: JSON.parse / parseSample / toBatchJob / enqueue / worker fetch', [c.json_parse, c.parse_validate, c.to_batch_job, c.enqueue, c.worker_fetch].map((s) => fmt(s.median, 1)).join(' / '));
  }
  if (r.engine) row('7', 'CPU-µs/row: ClickHouse insert (whole process) / rollup pass', `${fmt(r.engine.cpuUsPerRow.median, 1)} / ${fmt(r.engine.rollupCpuUsPerRow?.median ?? Number.NaN, 1)}`);
  if (r.e2e) row('7', 'CPU-µs/sample: server process end to end (all stages)', `${fmtSpread(r.e2e.serverCpuUsPerSample, 1)}; ${parts(r.e2e.serverCpuUsPerSampleByPart)}`);
  lines.push('');
  lines.push('## Targets (issues 6 and 13)');
  lines.push('');
  lines.push('| status | target | measured | bottleneck |');
  lines.push('|---|---|---|---|');
  for (const c of r.targets) lines.push(`| **${c.status}** | ${c.target} | ${c.measured} | ${c.bottleneck.replace(/\|/g, '\\|')} |`);
  lines.push('');
  if (r.bottlenecks.length) {
    lines.push('## Where the time goes');
    lines.push('');
    for (const x of r.bottlenecks) lines.push(`- ${x}`);
    lines.push('');
  }
  return lines.join('\n');
}
