/**
 * Fault 6: the scale-out path, split into processes by role, with kill -9 of each kind.
 *
 * Two ingest, two worker and one api process (`usage-meter start --role …`) coordinate
 * through one Redis and one engine, as they would around a ClickHouse server. No server
 * runs on these machines, so the engine is the embedded one behind the TEST-SUPPORT-ONLY
 * HTTP endpoint (test/support/clickhouse-http.ts) in a process of its own: every pipeline
 * process talks to it through @clickhouse/client's HTTP path, as it would to a server.
 * What that cannot show about a real server (concurrency, users, replicas) is listed in
 * docs/server-mode.md.
 *
 * A producer spreads a known workload over both ingest processes and retries until it gets
 * a 202. While it runs, one worker, then one ingest process, then the api process is
 * killed with SIGKILL and started again. At the end every account's bill equals the
 * oracle and every acknowledged sample is counted exactly once.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createClickHouse } from '../../lib/clickhouse.js';
import { deleteKeys, KEYS, uniquePrefix } from '../support/pipeline.js';
import { PipelineProcess, freePort } from './support/processes.js';
import { Producer } from './support/producer.js';
import { report } from './support/report.js';
import { checkBilled, checkTotals, pipelineState } from './support/verify.js';
import { makeWorkload } from './support/workload.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const API_KEYS = Object.entries(KEYS).map(([role, secret]) => `${role}:${role}-test:${secret}`).join(',');
const root = new URL('../../', import.meta.url).pathname;

/** The engine behind the test-support HTTP endpoint, in a child process; resolves with its URL. */
async function startEngineEndpoint(dataDir: string): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn('node', ['--import', 'tsx', 'test/support/clickhouse-http-process.ts', dataDir], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const first = await Promise.race([
    new Promise<string>((resolve) => lines.once('line', resolve)),
    sleep(30_000).then(() => {
      throw new Error('the engine endpoint did not start in 30 s');
    }),
  ]);
  return { url: (JSON.parse(first) as { url: string }).url, child };
}

describe('fault 6: split roles in separate processes, one engine, SIGKILL of each role', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'um-faults-scale-'));
  const prefix = uniquePrefix('f6scale');
  const redis = new Redis(REDIS_URL);
  let engine: ChildProcess | undefined;
  const procs: PipelineProcess[] = [];
  let producer: Producer | undefined;

  afterAll(async () => {
    producer?.stop();
    await Promise.all(procs.map((p) => p.stop()));
    if (engine) {
      const gone = new Promise((r) => engine!.once('exit', r));
      engine.kill('SIGTERM');
      await gone;
    }
    redis.disconnect();
    await deleteKeys(REDIS_URL, prefix);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('bills exactly with 2 ingest, 2 worker and 1 api process across kill -9 of each role', async () => {
    const started = Date.now();
    const endpoint = await startEngineEndpoint(dataDir);
    engine = endpoint.child;

    const common = {
      CLICKHOUSE_URL: endpoint.url, CLICKHOUSE_USER: 'default', CLICKHOUSE_PASSWORD: '',
      // The endpoint has no users; server mode still insists on a separate analytics login.
      CLICKHOUSE_ANALYTICS_USER: 'analytics_reader', CLICKHOUSE_ANALYTICS_PASSWORD: 'not-checked-by-the-test-endpoint',
      DATA_DIR: dataDir, KEY_PREFIX: prefix, API_KEYS, REDIS_URL,
      JOB_LOCK_MS: '1000', ROLLUP_INTERVAL_MS: '200', LOG_LEVEL: 'warn', INFLIGHT_RECONCILE_MS: '5000',
    };
    const role = async (name: 'ingest' | 'worker' | 'api') => {
      const p = new PipelineProcess({ ...common, ROLE: name, PORT: String(await freePort()) });
      procs.push(p);
      return p;
    };
    // The api process first: it applies the migrations (under their lock) before any writer.
    const api = await role('api');
    await api.start(60_000);
    const ingest = [await role('ingest'), await role('ingest')];
    const workers = [await role('worker'), await role('worker')];
    await Promise.all([...ingest, ...workers].map((p) => p.start(60_000)));

    // About 220 batches, paced so that the stream outlasts three kills and restarts.
    const wl = makeWorkload({ accounts: 12, resources: 60, hours: 4, batchSize: 200 });
    const ingestUrls = ingest.map((p) => `http://127.0.0.1:${p.port}`);
    let turn = 0;
    producer = new Producer({ url: () => ingestUrls[turn++ % ingestUrls.length]!, key: KEYS.producer, concurrency: 4, paceMs: 250 });
    const producing = producer.run(wl.batches);

    const kills: string[] = [];
    for (const [name, victim] of [['worker', workers[0]!], ['ingest', ingest[1]!], ['api', api]] as const) {
      await producer.acks(25);
      expect(producer.done, `the stream ended before the ${name} kill`).toBe(false);
      await victim.kill9();
      kills.push(name);
      await sleep(300);
      await victim.start(60_000);
    }
    await producing;
    expect(producer.stats.unexpectedRejections).toBe(0);

    // The bill, through the api process and the client's HTTP path.
    const totals = await checkTotals(`http://127.0.0.1:${api.port}`, wl.accounts, wl, producer.acknowledged, 120_000, () => pipelineState(redis, prefix));
    expect(totals.mismatches).toEqual({});

    // Every acknowledged sample counted once, read straight from the engine.
    const ch = createClickHouse({ CLICKHOUSE_URL: endpoint.url, CLICKHOUSE_USER: 'default', CLICKHOUSE_PASSWORD: '', DATA_DIR: dataDir });
    const billed = await checkBilled(ch, producer.acknowledged).finally(() => ch.close());
    expect(billed.missing).toEqual([]);
    expect(billed.unexpected).toEqual([]);
    expect(billed.billed).toBe(billed.distinctAcknowledged);
    expect(billed.aggregated).toBe(billed.billed);

    for (const p of procs) expect(await p.stop(), p.output).toBe(0);

    report({
      scenario: '6 scale-out (2 ingest, 2 worker, 1 api, one engine over HTTP)',
      sent: producer.stats.sentItems,
      acknowledged: producer.stats.acknowledgedItems,
      distinctAcknowledged: billed.distinctAcknowledged,
      billed: billed.billed,
      accounts: totals.accounts,
      faults: `SIGKILL of ${kills.join(', then ')} mid-load, each restarted; ${producer.stats.refused} attempts refused and ${producer.stats.noAnswer} cut off, all retried on the other ingest process`,
      seconds: (Date.now() - started) / 1000,
    });
  }, 240_000);
});
