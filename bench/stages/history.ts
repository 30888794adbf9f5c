/**
 * Stage 5, billing query latency against stored history (own process, one data directory
 * grown scale by scale: each call adds accounts up to the next scale).
 *
 * The history is one calendar month (the last full one) of a fleet that grows by accounts:
 * each account has 2 VMs × 5 metrics at 5-minute windows (89k samples a month). It is
 * generated with INSERT … SELECT from numbers_mt() straight into billing.samples_raw
 * (lib/history-sql.ts), then
 * aggregated either by one INSERT … SELECT into billing.usage_hourly with the rollup's
 * aggregation (`--rollup sql`, the default: valid because generated history holds no
 * duplicates, and fast), or by the product's own `rollupHour` over every hour of the month
 * (`--rollup product`: usage, coverage and analytics exactly as the scheduler writes them;
 * ~0.3–1.5 s an hour here, so 744 hours take 4–20 minutes per scale). In sql mode the
 * product's `rollupHour` still runs on `--sample-hours` hours spread over the month, to
 * report what one hour's recomputation costs at that scale (it also leaves those hours with
 * a second version, as re-rolled hours have in production).
 *
 * Then, in this process, through the product's own routes (queries/routes.ts on Fastify,
 * called with `inject`: routing, auth, the Redis completeness check, the queries and the
 * JSON answer; no socket):
 *   account   GET /v1/accounts/:a/usage for 30 days of one random account
 *   export    GET /v1/usage?period=YYYY-MM as NDJSON, every page (following X-Next-Cursor):
 *             every account's totals for the month (queries/export-routes.ts); if that
 *             route is missing, domain/period-export.ts `periodRecords` read to the end
 *
 *   node --import tsx bench/stages/history.ts --data-dir DIR --accounts-from A --accounts-to B
 *        --month-start MS [--rollup product|sql] [--account-queries 100] [--export-queries 10] --out FILE
 */
import { createClickHouse, queryRows } from '../../lib/clickhouse.js';
import { randomBytes } from 'node:crypto';
import Fastify from 'fastify';
import { KeyRing } from '../../lib/auth.js';
import { createLogger } from '../../lib/log.js';
import { connectRedis } from '../../lib/redis.js';
import { periodRecords } from '../../domain/period-export.js';
import { registerExportRoutes } from '../../queries/export-routes.js';
import { registerQueryRoutes } from '../../queries/routes.js';
import { loadConfig } from '../../schemas/config.js';
import { migrate } from '../../lib/migrate.js';
import { baseAmountSql } from '../../schemas/metrics.js';
import { redisKeys } from '../../schemas/queues.js';
import { deleteRedisKeys, REDIS_URL } from '../lib/server.js';
import { stageArgs, writeResult } from '../lib/child.js';
import { SERIES_PER_ACCOUNT, STEP_S } from '../lib/history-shape.js';
import { insertHistory } from '../lib/history-sql.js';
import { rollupContext, rollupOneHour } from '../lib/rollup.js';
import { percentiles, type Percentiles } from '../lib/stats.js';



export interface HistoryResult {
  accounts: number;
  storedSamples: number;
  usageHourlyRows: number;
  usageHourlyParts: number;
  rawBytesOnDisk: number;
  insertSeconds: number;
  insertedRows: number;
  rollupMode: 'product' | 'sql';
  /** The month's aggregation (all hours). */
  rollupSeconds: number;
  rollupHours: number;
  /** The product's rollupHour per hour at this scale: every hour (product) or a sample (sql). */
  rollupHourMs: Percentiles;
  samplesPerHour: number;
  mergeWaitSeconds: number;
  accountQueryMs: Percentiles;
  accountRows: number;
  exportVia: 'GET /v1/usage' | 'periodRecords';
  /** Pages the HTTP export took (X-Next-Cursor), all timed together. */
  exportPages: number;
  exportMs: Percentiles;
  exportRecords: number;
}

const HOUR_S = 3600;
const a = stageArgs();
const a0 = Number(a['accounts-from'] ?? 0);
const a1 = Number(a['accounts-to']);
const monthStart = Number(a['month-start']);
const d = new Date(monthStart);
const monthEnd = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
const steps = (monthEnd - monthStart) / (STEP_S * 1000);
const rollupMode = a.rollup === 'product' ? 'product' : 'sql';
const sampleHours = Number(a['sample-hours'] ?? 12);
const say = (s: string) => process.stdout.write(`${s}\n`);

const config = loadConfig({}, { DATA_DIR: a['data-dir'] });
const ch = createClickHouse(config);
await migrate(ch);

// --- history: accounts [a0, a1) over the whole month, time-major ---
const series = (a1 - a0) * SERIES_PER_ACCOUNT;
const count = series * steps;
let t = performance.now();
// batch_seq continues past what earlier scales used: acceptance order stays unique.
await insertHistory(ch, {
  accountPrefix: 'hacct-', a0, accounts: a1 - a0, seriesPerAccount: SERIES_PER_ACCOUNT,
  stepS: STEP_S, startMs: monthStart, steps, seqBase: a0 * SERIES_PER_ACCOUNT * steps,
});
const insertSeconds = (performance.now() - t) / 1000;
say(`history: +${count} samples (accounts ${a0}…${a1 - 1}) in ${insertSeconds.toFixed(1)} s`);

// --- aggregate every hour of the month ---
const hours: number[] = [];
for (let h = monthStart / 1000; h < monthEnd / 1000; h += HOUR_S) hours.push(h);
t = performance.now();
const ctx = await rollupContext(ch, config);
let version = Date.now() * 1000;
const perHourMs: number[] = [];
const rollHours = async (list: number[]) => {
  for (const [i, h] of list.entries()) {
    const s = performance.now();
    await rollupOneHour(ch, h, ++version, ctx);
    perHourMs.push(performance.now() - s);
    if (i % 100 === 99) say(`history: rollup ${i + 1}/${list.length} hours, ${((performance.now() - t) / 1000).toFixed(0)} s`);
  }
};
if (rollupMode === 'product') {
  await rollHours(hours);
} else {
  await ch.command({
    query: `INSERT INTO billing.usage_hourly (account_id, hour, metric, resource_id, resource_type, region, base_total, samples, version)
            SELECT account_id, usage_hour, metric, resource_id, any(resource_type), any(region),
                   sum(${baseAmountSql()}), count(), {version:UInt64}
            FROM billing.samples_raw
            WHERE usage_hour >= {from:DateTime('UTC')} AND usage_hour < {to:DateTime('UTC')}
            GROUP BY account_id, usage_hour, metric, resource_id`,
    query_params: { version: Date.now() * 1000, from: monthStart / 1000, to: monthEnd / 1000 },
  });
}
const rollupSeconds = (performance.now() - t) / 1000;
say(`history: ${rollupMode} rollup of ${hours.length} hours in ${rollupSeconds.toFixed(1)} s`);
if (rollupMode === 'sql') {
  const step = Math.max(1, Math.floor(hours.length / sampleHours));
  await rollHours(hours.filter((_, i) => i % step === Math.floor(step / 2)).slice(0, sampleHours));
}
const rollupHourMs = percentiles(perHourMs);

// --- let background merges settle, as they would on a table this old ---
t = performance.now();
for (let quiet = 0; quiet < 3 && performance.now() - t < 180_000; ) {
  const [m] = await queryRows<{ n: string }>(ch, 'SELECT count() AS n FROM system.merges');
  quiet = Number(m?.n ?? 0) === 0 ? quiet + 1 : 0;
  await new Promise((r) => setTimeout(r, 500));
}
const mergeWaitSeconds = (performance.now() - t) / 1000;

const [stats] = await queryRows<{ stored: string; uh_rows: string; uh_parts: string; raw_bytes: string }>(
  ch,
  `SELECT (SELECT count() FROM billing.samples_raw) AS stored,
          (SELECT count() FROM billing.usage_hourly) AS uh_rows,
          (SELECT count() FROM system.parts WHERE active AND database = 'billing' AND table = 'usage_hourly') AS uh_parts,
          (SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = 'billing' AND table = 'samples_raw') AS raw_bytes`,
);

// --- the product's query routes, in process ---
const log = createLogger('silent');
const redisHandle = await connectRedis({ url: REDIS_URL, dataDir: config.DATA_DIR, log, startPrivateIfDown: false });
const prefix = a.prefix ?? `umbench-history-${Date.now().toString(36)}`;
const secret = randomBytes(18).toString('base64url');
const app = Fastify({ logger: false });
const routeDeps = { ch, redis: redisHandle.client, redisKeys: redisKeys(prefix), keys: new KeyRing([{ role: 'billing', id: 'bench', secret }]) };
registerQueryRoutes(app, routeDeps);
registerExportRoutes(app, routeDeps);
await app.ready();
const get = async (url: string) => {
  const res = await app.inject({ method: 'GET', url, headers: { authorization: `Bearer ${secret}`, accept: 'application/x-ndjson' } });
  const next = res.headers['x-next-cursor'];
  return { status: res.statusCode, body: res.body, next: typeof next === 'string' ? next : undefined };
};

// --- account query: 30 days of one random account ---
const accountQueries = Number(a['account-queries'] ?? 100);
const accountMs: number[] = [];
let accountRows = 0;
const to = monthStart + 30 * 24 * HOUR_S * 1000;
for (let i = -5; i < accountQueries; i++) {
  const account = `hacct-${String(Math.floor(Math.random() * a1)).padStart(6, '0')}`;
  const s = performance.now();
  const res = await get(`/v1/accounts/${account}/usage?from=${monthStart}&to=${to}`);
  if (i >= 0) accountMs.push(performance.now() - s); // the first five warm the caches
  if (res.status !== 200) throw new Error(`usage API answered ${res.status}: ${res.body.slice(0, 300)}`);
  accountRows = (JSON.parse(res.body) as { rows: unknown[] }).rows.length;
}

// --- full-period export: every account's totals for the month ---
const exportQueries = Number(a['export-queries'] ?? 10);
const period = new Date(monthStart).toISOString().slice(0, 7);
const viaHttp = (await get(`/v1/usage?period=${period}`)).status === 200;
const exportMs: number[] = [];
let exportRecords = 0;
let exportPages = 0;
const exportStarted = performance.now();
for (let i = -1; i < exportQueries; i++) {
  const s = performance.now();
  let n = 0;
  if (viaHttp) {
    let pages = 0;
    for (let cursor: string | undefined, first = true; first || cursor; first = false) {
      const res = await get(`/v1/usage?period=${period}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      if (res.status !== 200) throw new Error(`export answered ${res.status}: ${res.body.slice(0, 300)}`);
      n += res.body.split('\n').filter((l) => l.trim() !== '').length;
      cursor = res.next;
      pages++;
    }
    exportPages = pages;
  } else {
    for await (const _ of periodRecords(ch, period)) n++;
  }
  if (i >= 0) exportMs.push(performance.now() - s);
  exportRecords = n;
  // At large scales each export takes seconds: stop after a minute with at least three.
  if (exportMs.length >= 3 && performance.now() - exportStarted > 60_000) break;
}
await app.close();
await redisHandle.close();
await deleteRedisKeys(prefix);

const result: HistoryResult = {
  accounts: a1,
  storedSamples: Number(stats?.stored),
  usageHourlyRows: Number(stats?.uh_rows),
  usageHourlyParts: Number(stats?.uh_parts),
  rawBytesOnDisk: Number(stats?.raw_bytes),
  insertSeconds,
  insertedRows: count,
  rollupMode,
  rollupSeconds,
  rollupHours: hours.length,
  rollupHourMs,
  samplesPerHour: count > 0 ? (a1 * SERIES_PER_ACCOUNT * 3600) / STEP_S : 0,
  mergeWaitSeconds,
  accountQueryMs: percentiles(accountMs),
  accountRows,
  exportVia: viaHttp ? 'GET /v1/usage' : 'periodRecords',
  exportPages,
  exportMs: percentiles(exportMs),
  exportRecords,
};
await ch.close();
writeResult(a.out, result);
