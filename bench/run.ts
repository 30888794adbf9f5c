/**
 * `npm run bench`: the product measured beside the limits of its own parts, in one run, on
 * this machine. See bench/README.md for what each number means.
 */
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runE2e } from './drivers/e2e.js';
import { runEngine } from './drivers/engine.js';
import { runHistory } from './drivers/history.js';
import { runLatency, type Workload } from './drivers/latency.js';
import { runMicro } from './drivers/micro.js';
import { REPO_ROOT } from './lib/child.js';
import { commandLine, machineInfo } from './lib/machine.js';
import { quietSettings } from './lib/quiet.js';
import { analyse, markdown, type BenchResults } from './lib/report.js';
import { deleteRedisKeys } from './lib/server.js';
import { replaySpecForItems } from './lib/workload.js';
import { configSchema } from '../schemas/config.js';

/** The settings the product starts with when nothing is set (the bench sets none of these). */
const productDefaults = configSchema.parse({});

const HELP = `Usage: npm run bench -- [options]

Measures, on this machine and in one run (each figure over several rounds):
  1 engine limit     simulated rows → billing.samples_raw with insertNdjson, 10k-row batches
  2 end to end       the product (cli/main.ts start, fresh data dir) fed by a separate load
                     generator process: first POST → complete (idle); ratio to 1
  3 ingest latency   p50/p99 of the 202 at half the measured end-to-end maximum
  4 freshness        p50/p99 from 202 to visible in the usage API at that load
  5 billing queries  account 30-day usage and full-period export at each --scales size;
                     5b: on the largest, account usage while ingest runs at half load
                     (with the e2e stage or --rate)
  6 memory           peak RSS of each process under load
  7 cost per sample  CPU-µs per stage (microbenchmarks, /proc per-thread CPU)

Options:
  --rounds N              rounds per figure (default 3)
  --samples N             end-to-end (and engine) workload, samples (default 600000)
  --concurrency N         load-generator connections at max load (default 4)
  --latency-seconds S     offered-load duration per latency round (default 20)
  --latency-workloads L   any of live,replay,steady (default live,replay; see README)
  --steady-minutes M      steady: minutes of the current hour filled before the load (default 10)
  --steady-rounds N       steady rounds (default 1: each takes minutes)
  --max-server-rss-gb G   kill the product and report the round as aborted above this RSS
                          (default 12: protects a shared machine)
  --rate R                offered load for 3/4 in samples/s (default: half of 2's median)
  --scales LIST           stored samples for 5, e.g. 1e6,1e7,1e8 (default 1e6,1e7)
  --history-rollup M      sql (default) or product: how history is aggregated (README)
  --sample-hours N        hours re-rolled with the product's rollupHour per scale (default 12)
  --account-queries N     account queries per scale (default 100)
  --export-queries N      exports per scale (default 10; stops after 60 s with ≥ 3)
  --stages LIST           micro,engine,e2e,latency,history (default all)
  --no-native             skip the chdb rawInsert comparison (1b)
  --ingest-processes N    stages 2-4: producers post to N separate \`start --role ingest\`
                          processes (HTTP, validation, enqueueing), the engine's process
                          keeps the workers and the API (default 0: one process)
  --quiet-threshold C     before each round wait until other work on the machine uses
                          at most C cores (default 0.3) …
  --quiet-max-wait S      … for at most S seconds (default 60), then measure anyway
  --work-dir DIR          data directories (default: a new one under ${tmpdir()})
  --keep-data             keep the data directories
  --out-dir DIR           results (default bench/results)
  -h, --help`;

const { values: v } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    samples: { type: 'string', default: '600000' },
    concurrency: { type: 'string', default: '4' },
    'latency-seconds': { type: 'string', default: '20' },
    'latency-workloads': { type: 'string', default: 'live,replay' },
    'steady-minutes': { type: 'string', default: '10' },
    'steady-rounds': { type: 'string', default: '1' },
    'max-server-rss-gb': { type: 'string', default: '12' },
    rate: { type: 'string' },
    scales: { type: 'string', default: '1e6,1e7' },
    'history-rollup': { type: 'string', default: 'sql' },
    'sample-hours': { type: 'string', default: '12' },
    'account-queries': { type: 'string', default: '100' },
    'export-queries': { type: 'string', default: '10' },
    stages: { type: 'string', default: 'micro,engine,e2e,latency,history' },
    'no-native': { type: 'boolean', default: false },
    'ingest-processes': { type: 'string', default: '0' },
    'quiet-threshold': { type: 'string', default: '0.3' },
    'quiet-max-wait': { type: 'string', default: '60' },
    'work-dir': { type: 'string' },
    'keep-data': { type: 'boolean', default: false },
    'out-dir': { type: 'string', default: path.join(REPO_ROOT, 'bench', 'results') },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (v.help) {
  console.log(HELP);
  process.exit(0);
}
const num = (name: string, raw: string, min: number) => {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) {
    console.error(`bench: --${name} must be a number ≥ ${min}`);
    process.exit(2);
  }
  return n;
};
const rounds = num('rounds', v.rounds, 1);
const samples = num('samples', v.samples, 10_000);
const concurrency = num('concurrency', v.concurrency, 1);
const latencySeconds = num('latency-seconds', v['latency-seconds'], 5);
const scales = v.scales.split(',').filter(Boolean).map((s) => num('scales', s, 1e4));
const stages = new Set(v.stages.split(',').map((s) => s.trim()));
const workloads = v['latency-workloads'].split(',').map((s) => s.trim()).filter((s): s is Workload => ['live', 'steady', 'replay'].includes(s));
const maxServerRssMB = num('max-server-rss-gb', v['max-server-rss-gb'], 0.5) * 1024;
const ingestProcesses = num('ingest-processes', v['ingest-processes'], 0);
const historyRollup = v['history-rollup'] === 'product' ? 'product' : 'sql';

quietSettings.thresholdCores = num('quiet-threshold', v['quiet-threshold'], 0);
quietSettings.maxWaitMs = num('quiet-max-wait', v['quiet-max-wait'], 0) * 1000;

const runId = Date.now().toString(36);
const workDir = v['work-dir'] ?? path.join(tmpdir(), `um-bench-${runId}`);
mkdirSync(workDir, { recursive: true });
const started = Date.now();
const log = (s: string) => process.stderr.write(`[${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${s}\n`);

const cleanUp = async () => {
  await deleteRedisKeys(`umbench-${runId}-*`).catch(() => undefined);
  if (!v['keep-data']) rmSync(workDir, { recursive: true, force: true });
};
process.once('SIGINT', () => {
  log('interrupted: removing this run\'s Redis keys and data directories');
  void cleanUp().finally(() => process.exit(130));
});

const machine = await machineInfo();
const results: BenchResults = {
  schema: 'usage-meter-bench/1',
  startedAt: new Date(started).toISOString(),
  finishedAt: '',
  command: commandLine(),
  argv: process.argv.slice(2),
  options: { quiet: quietSettings, maxServerRssMB, steadyRounds: Number(v['steady-rounds']), rounds, samples, concurrency, latencySeconds, workloads, steadyMinutes: Number(v['steady-minutes']), scales, historyRollup, stages: [...stages], workDir },
  machine,
  notes: [
    `${machine.cores} cores shared by the product, the load generator, Redis and this orchestrator (and by anything else running: see othersBusyCores per stage in the JSON).`,
    `Before each timed round the bench waits (up to ${quietSettings.maxWaitMs / 1000} s) until other work on the machine uses ≤ ${quietSettings.thresholdCores} cores; what it found is in each round's machine.quiet.`,
    `The product runs with its defaults (embedded chdb, WORKER_CONCURRENCY ${productDefaults.WORKER_CONCURRENCY}, MAX_INSERT_ROWS ${productDefaults.MAX_INSERT_ROWS}, ROLLUP_INTERVAL_MS ${productDefaults.ROLLUP_INTERVAL_MS}, MAX_QUEUED_BATCHES ${productDefaults.MAX_QUEUED_BATCHES}, LOG_LEVEL info to a file); Redis is the shared one at REDIS_URL.`,
  ],
  targets: [],
  bottlenecks: [],
};
log(`bench ${runId}: ${machine.cores} cores, node ${machine.node}, chdb ${machine.packages.chdb}, commit ${machine.git.short}${machine.git.dirty ? ' (dirty)' : ''}, load ${machine.loadAverageAtStart.join(' ')}`);

try {
  // The same simulated rows for the engine limit and the end-to-end run.
  const e2eSpec = replaySpecForItems(samples, 1000);
  const engineSpec = { ...e2eSpec, batchSize: 10_000 };

  if (stages.has('micro')) {
    log('7 microbenchmarks: JSON.parse, parseSample, toBatchJob, enqueue, worker fetch');
    results.micro = await runMicro({ spec: replaySpecForItems(200_000, 1000), rounds, prefix: `umbench-${runId}-micro` });
  }
  if (stages.has('engine')) {
    log(`1 engine limit: ${samples.toLocaleString('en')} simulated rows, 10k-row insertNdjson batches, ${rounds} rounds`);
    results.engine = await runEngine({ spec: engineSpec, rounds, insertPath: 'client', rollup: true, workDir, log });
    machine.clickhouse = results.engine.clickhouseVersion;
    if (!v['no-native']) {
      log('1b the same rows through chdb rawInsert (for comparison only)');
      results.engineNative = await runEngine({ spec: engineSpec, rounds, insertPath: 'native', rollup: false, workDir, log });
    }
    log('1d the same rows in 1,000-row inserts, one per HTTP batch as the worker does');
    results.engineSmall = await runEngine({ spec: e2eSpec, rounds, insertPath: 'client', rollup: false, workDir, log });
  }
  if (stages.has('e2e')) {
    log(`2 end to end: ${samples.toLocaleString('en')} samples (${e2eSpec.hours} h of the demo fleet), ${concurrency} connections, ${rounds} rounds`);
    const e2e = await runE2e({ spec: e2eSpec, rounds, concurrency, ingestProcesses, runId, workDir, keepData: v['keep-data'], maxServerRssMB, log });
    results.e2e = { ...e2e, e2eHours: e2eSpec.hours };
  }
  // Half the measured maximum (or --rate): stages 3-4, and 5b on the largest store.
  const halfLoad = v.rate ? num('rate', v.rate, 1) : (results.e2e?.samplesPerS.median ?? Number.NaN) / 2;
  if (stages.has('latency')) {
    const rate = halfLoad;
    if (!Number.isFinite(rate)) throw new Error('the latency stage needs --rate or the e2e stage');
    results.latency = {};
    for (const workload of workloads) {
      const n = workload === 'steady' ? num('steady-rounds', v['steady-rounds'], 1) : rounds;
      log(`3+4 latency and freshness [${workload}] at ${Math.round(rate).toLocaleString('en')} samples/s for ${latencySeconds} s, ${n} rounds`);
      results.latency[workload] = await runLatency({
        workload, steadyMinutes: num('steady-minutes', v['steady-minutes'], 0), rate, seconds: latencySeconds, rounds: n,
        runId, workDir, keepData: v['keep-data'], maxServerRssMB, ingestProcesses, log,
      });
    }
  }
  if (stages.has('history')) {
    log(`5 billing queries at ${scales.map((s) => s.toExponential(0)).join(' → ')} stored samples (history rollup: ${historyRollup})`);
    results.history = await runHistory({
      prefix: `umbench-${runId}-history`, scales, rollup: historyRollup, sampleHours: num('sample-hours', v['sample-hours'], 0),
      accountQueries: num('account-queries', v['account-queries'], 1), exportQueries: num('export-queries', v['export-queries'], 1),
      workDir, keepData: v['keep-data'], log,
      ...(Number.isFinite(halfLoad) ? { underLoad: { ratePerS: halfLoad, seconds: latencySeconds, runId, maxServerRssMB } } : {}),
    });
  }
} finally {
  results.finishedAt = new Date().toISOString();
  const { targets, bottlenecks } = analyse(results);
  results.targets = targets;
  results.bottlenecks = bottlenecks;
  const outDir = v['out-dir'];
  mkdirSync(outDir, { recursive: true });
  let base = `${results.startedAt.slice(0, 10)}-${machine.git.short}`;
  for (let i = 2; existsSync(path.join(outDir, `${base}.json`)); i++) base = `${results.startedAt.slice(0, 10)}-${machine.git.short}-${i}`;
  const md = markdown(results);
  writeFileSync(path.join(outDir, `${base}.json`), JSON.stringify(results, null, 2) + '\n');
  writeFileSync(path.join(outDir, `${base}.md`), `${md}\nFull results: [${base}.json](${base}.json)\n`);
  copyFileSync(path.join(outDir, `${base}.md`), path.join(outDir, 'latest.md'));
  process.stdout.write(`\n${md}\n`);
  log(`results: ${path.relative(process.cwd(), path.join(outDir, `${base}.{json,md}`))} and latest.md`);
  await cleanUp();
}
