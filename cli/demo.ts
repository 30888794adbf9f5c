/**
 * `usage-meter demo`: the whole product in one command. Starts the all-in-one pipeline on
 * a fresh data directory, simulates a fleet, pushes its samples through the HTTP API,
 * waits until everything is aggregated, then prints bills and a capacity summary, and
 * checks every account's totals against the simulator's independent tally.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import { startPipeline, type Pipeline } from '../app/pipeline.js';
import { createFileLogger, type FileLog } from '../lib/log.js';
import { HOUR_MS } from '../lib/time.js';
import { capacitySummary } from '../queries/capacity-summary.js';
import { isIdle } from '../domain/ledger.js';
import { loadConfig } from '../schemas/config.js';
import { countExpected, createFleet, ExpectedTotals, generateSamples, postBatches, type SampleBatch } from '../sim/index.js';
import { describeTraces, loadTraces } from '../sim/traces.js';
import type { UsageRow } from '../queries/usage.js';
import { printTable } from './table.js';

const HELP = `Usage: usage-meter demo [options]

Simulates a fleet and runs it through the real pipeline (HTTP → Redis → ClickHouse),
then prints a few accounts' bills and a per-region capacity summary.

Options:
  --accounts N      accounts in the fleet (default 100)
  --resources N     resources, all types (default 1000)
  --hours N         hours of usage to simulate, ending at the last full hour (default 24)
  --step S          seconds per sample (default 60)
  --concurrency N   batches in flight (default 4)
  --data-dir DIR    where to keep the data (default: a new .data/demo-<time>)
  --redis-url URL   Redis to use (default redis://127.0.0.1:6379, or a private one)
  --help`;

export async function runDemoCommand(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      accounts: { type: 'string', default: '100' },
      resources: { type: 'string', default: '1000' },
      hours: { type: 'string', default: '24' },
      step: { type: 'string', default: '60' },
      concurrency: { type: 'string', default: '4' },
      'data-dir': { type: 'string' },
      'redis-url': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    console.log(HELP);
    return 0;
  }
  const num = (name: string, v: string, min: number, max: number) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min || n > max) throw Object.assign(new Error(`--${name} must be a whole number from ${min} to ${max}`), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
    return n;
  };
  const accounts = num('accounts', values.accounts, 1, 100_000);
  const resources = num('resources', values.resources, accounts, 1_000_000);
  const hours = num('hours', values.hours, 1, 24 * 62);
  const stepS = num('step', values.step, 1, 3600);
  const concurrency = num('concurrency', values.concurrency, 1, 64);

  const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\..*/, '').replace('T', '-');
  const config = loadConfig(process.env, {
    DATA_DIR: values['data-dir'] ?? path.join('.data', `demo-${stamp}`),
    REDIS_URL: values['redis-url'],
    KEY_PREFIX: `demo-${stamp}`,
    PORT: '0',
    ROLE: 'all',
    API_KEYS: undefined,
    // The logs go to a file (info: they are out of the way there), so the terminal shows
    // only the demo's own lines and tables; the last line says where the logs are.
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
  });
  const say = (s: string) => process.stderr.write(`${s}\n`);
  const log = createFileLogger(config.LOG_LEVEL, path.join(config.DATA_DIR, 'demo.log'));
  say(`usage-meter demo: data in ${config.DATA_DIR}, logs in ${log.path}`);
  let code = 1;
  try {
    const pipeline = await startPipeline(config, log.logger);
    try {
      code = await run(pipeline, { accounts, resources, hours, stepS, concurrency, say });
    } finally {
      await pipeline.close();
    }
  } finally {
    log.flush();
    say(logSummary(log));
  }
  return code;
}

/** The demo's last line: where the logs are and whether anything in them needs a look. */
function logSummary(log: FileLog): string {
  const n = log.warnings();
  return n === 0 ? `Logs: ${log.path} (no warnings)` : `Logs: ${log.path} (${n} warning${n === 1 ? '' : 's'} or error${n === 1 ? '' : 's'} in it: look there first)`;
}

interface DemoOptions {
  accounts: number;
  resources: number;
  hours: number;
  stepS: number;
  concurrency: number;
  say: (s: string) => void;
}

async function run(p: Pipeline, o: DemoOptions): Promise<number> {
  const keys = await keysOf(p);
  const fleet = createFleet({ accounts: o.accounts, resources: o.resources, seed: 42 });
  const end = Math.floor(Date.now() / HOUR_MS) * HOUR_MS;
  const start = end - o.hours * HOUR_MS;
  const expected = new ExpectedTotals();
  const plan = countExpected(fleet, { hours: o.hours, stepS: o.stepS });
  o.say(`simulating ${fleet.accounts.length} accounts, ${fleet.resources.length} resources, ${o.hours} h of ${o.stepS}-second samples (${plan.samples.toLocaleString('en')} samples)`);
  const traces = loadTraces();
  o.say(`fleet shaped by: ${describeTraces(traces)}`);

  const bar = new cliProgress.SingleBar(
    { format: 'sending   [{bar}] {percentage}% | {value}/{total} samples | {rate}/s | eta {eta_formatted}', hideCursor: true, stream: process.stderr },
    cliProgress.Presets.shades_classic,
  );
  bar.start(plan.samples, 0, { rate: 0 });
  const started = Date.now();
  let sentDistinct = 0;
  function* tracked(): Generator<SampleBatch> {
    for (const batch of generateSamples(fleet, { start, hours: o.hours, stepS: o.stepS, seed: 42, traces })) {
      expected.add(batch);
      yield batch;
    }
  }
  const summary = await postBatches(p.url, keys.producer, tracked(), {
    concurrency: o.concurrency,
    onBatch: (_r, batch) => {
      sentDistinct += batch.valid - batch.duplicates;
      bar.update(Math.min(sentDistinct, plan.samples), { rate: Math.round(sentDistinct / Math.max(0.001, (Date.now() - started) / 1000)) });
    },
  });
  bar.stop();
  o.say(
    `sent ${summary.sent.toLocaleString('en')} items in ${(summary.elapsedMs / 1000).toFixed(1)} s: ${summary.accepted.toLocaleString('en')} accepted ` +
      `(${summary.duplicatesInjected} deliberate duplicates), ${summary.rejected} rejected (${summary.invalidInjected} deliberately invalid)`,
  );
  if (summary.failed.length > 0 || summary.stopped) {
    o.say(`some batches failed: ${summary.failed.map((f) => `#${f.index} ${f.status} ${f.reason}`).join('; ')}`);
    return 1;
  }

  o.say('waiting for the workers and rollups to catch up…');
  const waitStarted = Date.now();
  while (!(await isIdle(p.redis.client, p.redisKeys))) await sleep(250);
  o.say(`everything aggregated ${((Date.now() - waitStarted) / 1000).toFixed(1)} s after the last 202 (${((Date.now() - started) / 1000).toFixed(1)} s end to end)\n`);

  // Bills: the biggest, a middle and the smallest account, through the real usage API.
  const bySize = [...fleet.accounts].sort((a, b) => b.resourceCount - a.resourceCount);
  const shown = [bySize[0]!, bySize[Math.floor(bySize.length / 2)]!, bySize[bySize.length - 1]!];
  for (const account of shown) {
    const res = await fetch(`${p.url}/v1/accounts/${encodeURIComponent(account.id)}/usage?from=${start}&to=${end}`, {
      headers: { authorization: `Bearer ${keys.billing}` },
    });
    const body = (await res.json()) as { complete: boolean; rows: UsageRow[] };
    console.log(`Bill for ${account.id} (${account.resourceCount} resources, ${account.plan}), ${new Date(start).toISOString()} → ${new Date(end).toISOString()}, complete: ${body.complete}`);
    printTable(body.rows.map((r) => ({ metric: r.metric, quantity: r.quantity, unit: r.unit, base_total: r.base_total, base_unit: r.base_unit })));
    console.log('');
  }

  console.log(`Capacity by region (anonymized analytics, cells of ≥ ${p.config.K_ANONYMITY} accounts)`);
  printTable(await capacitySummary(p.ch!, start, end));

  // Every account, every metric, against the simulator's own exact tally.
  let mismatches = 0;
  for (const account of fleet.accounts) {
    const res = await fetch(`${p.url}/v1/accounts/${encodeURIComponent(account.id)}/usage?from=${start}&to=${end}`, { headers: { authorization: `Bearer ${keys.billing}` } });
    const body = (await res.json()) as { rows: UsageRow[] };
    for (const row of body.rows) if (row.base_total !== expected.get(account.id, row.metric)) mismatches++;
  }
  console.log(
    mismatches === 0
      ? `\n✓ all ${fleet.accounts.length} accounts' totals equal the simulator's exact tally (${expected.distinct.toLocaleString('en')} distinct samples, duplicates billed once)`
      : `\n✗ ${mismatches} account/metric totals differ from the simulator's tally`,
  );
  console.log(`\nThe data stays in ${p.config.DATA_DIR}. Explore it with:\n  npm start -- --data-dir ${p.config.DATA_DIR} --key-prefix ${p.config.KEY_PREFIX}\n  (API keys: ${p.apiKeysFile})`);
  return mismatches === 0 ? 0 : 1;
}

async function keysOf(p: Pipeline): Promise<{ producer: string; billing: string }> {
  const { readFile } = await import('node:fs/promises');
  const keys = JSON.parse(await readFile(p.apiKeysFile!, 'utf8')) as { role: string; secret: string }[];
  const find = (role: string) => keys.find((k) => k.role === role)!.secret;
  return { producer: find('producer'), billing: find('billing') };
}
