/**
 * Stage 1, the engine limit (run as its own process, one round per process, on a fresh data
 * directory): the simulated rows, validated and pre-serialized by ingest's own `toBatchJob`,
 * inserted straight into billing.samples_raw by the batch writer's own `insertRawRows`
 * (`insertNdjson` in the job's row encoding) in 10k-row batches, one after another (chdb runs one query at a time per process, so parallel inserts add
 * nothing; `serialization` below shows it). Each insert carries a deduplication token, as
 * the batch writer's do.
 *
 * Then the rollup cost: `rollupHour` over every hour the rows touched, as the scheduler
 * would run it once per hour.
 *
 * `--insert native` instead hands the same NDJSON to chdb's own zero-copy `rawInsert`
 * (multithreaded native parser), bypassing @clickhouse/client's exec path: not what the
 * product does, but it shows how much of the limit is the client path rather than the engine.
 *
 *   node --import tsx bench/stages/engine.ts --data-dir DIR --spec JSON [--insert client|native] [--rollup false] --out FILE
 */
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createClient } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { createClickHouse, queryRows, type ClickHouseClient } from '../../lib/clickhouse.js';
import { RAW_COLUMNS } from '../../schemas/raw-row.js';
import { insertRawRows } from '../../workers/batch-writer.js';
import { loadConfig } from '../../schemas/config.js';
import { migrate } from '../../lib/migrate.js';
import { stageArgs, writeResult } from '../lib/child.js';
import { diffThreadCpu, groupThreads, memStatus, resetPeakRss, threadCpuMs } from '../lib/proc.js';
import { rollupContext, rollupOneHour } from '../lib/rollup.js';
import { percentiles } from '../lib/stats.js';
import { rawRowBatches, type WorkloadSpec } from '../lib/workload.js';
import { COUNTED_VIEW_SQL, NARROW_DEDUP_SQL } from '../lib/dedup-sql.js';

export interface EngineResult {
  insertPath: 'client' | 'native';
  rowFormat: string;
  clickhouseVersion: string;
  rows: number;
  inserts: number;
  bytesPerRow: number;
  seconds: number;
  rowsPerS: number;
  /** Process CPU (all threads) per row while inserting. */
  cpuUsPerRow: number;
  cpuUsPerRowByThread: Record<string, number>;
  /** The engine's own elapsed time per row (chdb's query summary). */
  engineElapsedUsPerRow: number;
  insertMs: ReturnType<typeof percentiles>;
  /** Resident memory before the first insert: mostly the pre-generated rows. */
  rssBeforeMB: number;
  /** Peak resident memory while inserting (VmHWM, reset before the first insert). */
  peakRssMB: number;
  rollup: {
    hours: number;
    rowsPerHour: number;
    seconds: number;
    rowsPerS: number;
    cpuUsPerRow: number;
    hourMs: ReturnType<typeof percentiles>;
    /** Share of the rollup's time per statement, by the table it writes. */
    statementShare: Record<string, number>;
    /** The deduplicating view alone over the largest hour, and a narrow equivalent. */
    countedSamplesViewMs: number;
    narrowDedupMs: number;
  } | null;
  serialization: { longQueryMs: number; shortQueryWaitMs: number };
}

const args = stageArgs();
const spec = JSON.parse(args.spec ?? '{}') as WorkloadSpec;
const nowMs = Date.now();
const { batches, rows, bytes } = rawRowBatches(spec, nowMs);
process.stdout.write(`engine: ${rows} rows in ${batches.length} batches generated\n`);

const config = loadConfig({}, { DATA_DIR: args['data-dir'] });
const insertPath = args.insert === 'native' ? 'native' : 'client';
type RawInsert = (p: { table: string; columns?: readonly string[]; format: string; values: string; settings: Record<string, string> }) => Promise<{ elapsed: number }>;
let rawInsert: RawInsert | undefined;
let base: ClickHouseClient;
if (insertPath === 'client') {
  base = createClickHouse(config);
} else {
  const dir = path.join(config.DATA_DIR, 'clickhouse');
  mkdirSync(dir, { recursive: true });
  const conn = createChdbConnection({ path: dir });
  const ext = (conn as unknown as { chdb: { rawInsert: RawInsert } }).chdb;
  rawInsert = (p) => ext.rawInsert(p);
  base = createClient({ connection: conn as unknown as NonNullable<Parameters<typeof createClient>[0]>['connection'], clickhouse_settings: { session_timezone: 'UTC' } });
}
let engineElapsedNs = 0;
/** Wall time per statement kind (the table a statement writes), for the rollup's anatomy. */
const statementMs: Record<string, number> = {};
// Records the engine's own elapsed time from each result's summary, and each statement's
// wall time; otherwise the client is used exactly as the product uses it.
const ch = new Proxy(base, {
  get(target, prop, receiver) {
    const value = Reflect.get(target, prop, receiver) as unknown;
    if ((prop === 'exec' || prop === 'command') && typeof value === 'function') {
      return async (...a: unknown[]) => {
        const started = performance.now();
        const r = (await (value as (...x: unknown[]) => Promise<{ summary?: { elapsed_ns?: string } }>).apply(target, a));
        engineElapsedNs += Number(r.summary?.elapsed_ns ?? 0);
        const query = String((a[0] as { query?: string } | undefined)?.query ?? '');
        const kind = /INSERT INTO\s+([\w.]+)/i.exec(query)?.[1] ?? query.trim().slice(0, 40);
        statementMs[kind] = (statementMs[kind] ?? 0) + performance.now() - started;
        return r;
      };
    }
    return typeof value === 'function' ? (value as (...x: unknown[]) => unknown).bind(target) : value;
  },
}) as ClickHouseClient;

await migrate(ch);
const [{ v: clickhouseVersion } = { v: 'unknown' }] = await queryRows<{ v: string }>(ch, 'SELECT version() AS v');

// --- inserts ---
const rssBeforeMB = memStatus(process.pid).vmRSSkB / 1024;
resetPeakRss();
const insertMs: number[] = [];
const threads0 = threadCpuMs(process.pid);
const cpu0 = process.cpuUsage();
const t0 = performance.now();
for (const body of batches) {
  const s = performance.now();
  if (rawInsert) {
    const compact = body.rowFormat === 'JSONCompactEachRow';
    const r = await rawInsert({
      table: 'billing.samples_raw', format: body.rowFormat ?? 'JSONEachRow', values: body.rows,
      ...(compact ? { columns: RAW_COLUMNS } : {}), settings: { insert_deduplication_token: randomUUID() },
    });
    engineElapsedNs += r.elapsed * 1e9;
  } else {
    await insertRawRows(ch, body, { insert_deduplication_token: randomUUID() });
  }
  insertMs.push(performance.now() - s);
}
const seconds = (performance.now() - t0) / 1000;
const cpu = process.cpuUsage(cpu0);
const byThread = groupThreads(diffThreadCpu(threads0, threadCpuMs(process.pid)));
const insertElapsedNs = engineElapsedNs;
process.stdout.write(`engine (${insertPath}): ${Math.round(rows / seconds)} rows/s\n`);

const insertPeakMB = memStatus(process.pid).vmHWMkB / 1024;

// --- rollup, once per hour touched ---
let rollup: EngineResult['rollup'] = null;
if (args.rollup !== 'false') {
  const hours = await queryRows<{ h: string; n: string }>(
    ch,
    'SELECT toUnixTimestamp(usage_hour) AS h, count() AS n FROM billing.samples_raw GROUP BY h ORDER BY h',
  );
  const hourMs: number[] = [];
  for (const k of Object.keys(statementMs)) delete statementMs[k];
  const rc0 = process.cpuUsage();
  const r0 = performance.now();
  let version = Date.now() * 1000;
  const ctx = await rollupContext(ch, config);
  for (const { h } of hours) {
    const s = performance.now();
    await rollupOneHour(ch, Number(h), ++version, ctx);
    hourMs.push(performance.now() - s);
  }
  const rs = (performance.now() - r0) / 1000;
  const rcpu = process.cpuUsage(rc0);
  const rolled = hours.reduce((a, x) => a + Number(x.n), 0);
  const total = Object.values(statementMs).reduce((x, y) => x + y, 0);
  const statementShare = Object.fromEntries(Object.entries(statementMs).map(([k, ms]) => [k, ms / total]));
  // billing.counted_samples sorts whole rows (SELECT *) twice; the same first-copy rule on the
  // key columns only, for comparison.
  const biggest = [...hours].sort((x, y) => Number(y.n) - Number(x.n))[0]?.h;
  const timed = async (query: string) => {
    const s = performance.now();
    await queryRows(ch, query, { hour: Number(biggest) });
    return performance.now() - s;
  };
  const countedSamplesViewMs = await timed(COUNTED_VIEW_SQL);
  const narrowDedupMs = await timed(NARROW_DEDUP_SQL);
  rollup = {
    hours: hours.length,
    rowsPerHour: rolled / Math.max(1, hours.length),
    seconds: rs,
    rowsPerS: rolled / rs,
    cpuUsPerRow: (rcpu.user + rcpu.system) / rolled,
    hourMs: percentiles(hourMs),
    statementShare,
    countedSamplesViewMs,
    narrowDedupMs,
  };
}

// --- does the engine run two queries at once? ---
const l0 = performance.now();
const long = queryRows(ch, 'SELECT sum(number) AS s FROM numbers(1500000000)').then(() => performance.now() - l0);
await new Promise((r) => setTimeout(r, 20));
const s0 = performance.now();
await queryRows(ch, 'SELECT 1 AS x');
const shortQueryWaitMs = performance.now() - s0;
const longQueryMs = await long;

const result: EngineResult = {
  insertPath,
  rowFormat: batches[0]?.rowFormat ?? 'JSONEachRow',
  clickhouseVersion,
  rows,
  inserts: batches.length,
  bytesPerRow: bytes / rows,
  seconds,
  rowsPerS: rows / seconds,
  cpuUsPerRow: (cpu.user + cpu.system) / rows,
  cpuUsPerRowByThread: Object.fromEntries(Object.entries(byThread).map(([k, ms]) => [k, (ms * 1000) / rows])),
  engineElapsedUsPerRow: insertElapsedNs / 1000 / rows,
  insertMs: percentiles(insertMs),
  rssBeforeMB,
  peakRssMB: insertPeakMB,
  rollup,
  serialization: { longQueryMs, shortQueryWaitMs },
};
await base.close();
writeResult(args.out, result);
