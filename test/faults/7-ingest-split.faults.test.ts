/**
 * Fault 7: `start` with INGEST_PROCESSES=2 (app/process-split.ts): two ingest processes
 * share PORT and forward every other route to the engine's process. Under a producer's
 * stream: SIGKILL of one ingest process (the engine's process starts another), then
 * SIGKILL of the engine's process itself (its ingest processes end with it, so a restart
 * on the same PORT and data directory works). Every account's bill equals the oracle,
 * every acknowledged sample is counted once, /metrics on PORT adds up every process, an
 * API route answers through the forwarder, and a client leaving its query cancels it.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { createClickHouse } from '../../lib/clickhouse.js';
import { DEFAULT_SANDBOX_LIMITS } from '../../queries/sandbox/sandbox.js';
import { deleteKeys, KEYS, uniquePrefix } from '../support/pipeline.js';
import { PipelineProcess, freePort } from './support/processes.js';
import { Producer } from './support/producer.js';
import { report } from './support/report.js';
import { checkBilled, checkTotals, pipelineState } from './support/verify.js';
import { makeWorkload } from './support/workload.js';

/** Runs to the sandbox's time limit unless cancelled (as in test/adversarial/sandbox). */
const HEAVY = 'SELECT count() AS n FROM numbers(100000) AS a CROSS JOIN numbers(100000) AS b WHERE cityHash64(a.number, b.number) % 1000 = 7';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const API_KEYS = Object.entries(KEYS).map(([role, secret]) => `${role}:${role}-test:${secret}`).join(',');

/** The ingest processes the engine's process `pid` forked (not tsx's esbuild service). */
function childrenOf(pid: number): number[] {
  try {
    return execFileSync('ps', ['--ppid', String(pid), '-o', 'pid=,args='], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes('cli/main.ts'))
      .map((line) => Number.parseInt(line, 10))
      .filter((n) => n > 0);
  } catch {
    return []; // ps exits 1 when there are none
  }
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('fault 7: ingest in separate processes (INGEST_PROCESSES=2)', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'um-faults-split-'));
  const prefix = uniquePrefix('f7split');
  const redis = new Redis(REDIS_URL);
  let proc: PipelineProcess | undefined;
  let producer: Producer | undefined;
  let rest: Producer | undefined;

  afterAll(async () => {
    producer?.stop();
    rest?.stop(); // a failed test leaves no producer retrying
    await proc?.stop();
    redis.disconnect();
    await deleteKeys(REDIS_URL, prefix);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('bills exactly across SIGKILL of an ingest process and of the engine’s process', async () => {
    const started = Date.now();
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    proc = new PipelineProcess({
      DATA_DIR: dataDir, KEY_PREFIX: prefix, PORT: String(port), API_KEYS, REDIS_URL, INGEST_PROCESSES: '2',
      JOB_LOCK_MS: '1000', ROLLUP_INTERVAL_MS: '200', LOG_LEVEL: 'warn', INFLIGHT_RECONCILE_MS: '5000',
    });
    await proc.start(60_000);
    const ready = (await (await fetch(`${baseUrl}/readyz`)).json()) as { checks: Record<string, string> };
    expect(ready.checks).toMatchObject({ redis: 'ok', engine_process: 'ok' });
    const firstIngest = childrenOf(proc.pid!);
    expect(firstIngest).toHaveLength(2);

    // A first part of the stream with nothing killed: /metrics on PORT counts every sample
    // accepted by either ingest process (the engine's process adds up their series).
    const wl = makeWorkload({ accounts: 10, resources: 60, hours: 4, batchSize: 200 });
    const warmup = wl.batches.slice(0, 20);
    producer = new Producer({ url: () => baseUrl, key: KEYS.producer, concurrency: 4 });
    await producer.run(warmup);
    const metrics = await (await fetch(`${baseUrl}/metrics`)).text();
    const accepted = Number(/^um_samples_accepted_total (\d+)/m.exec(metrics)?.[1]);
    expect(accepted).toBe(producer.stats.acknowledgedItems);
    // So does /v1/status (the console's health view), forwarded to the engine's process.
    const status = (await (await fetch(`${baseUrl}/v1/status`, { headers: { authorization: `Bearer ${KEYS.billing}` } })).json()) as { ingest: { scope: string; samples_accepted: number } };
    expect(status.ingest).toMatchObject({ scope: 'all ingest processes', samples_accepted: producer.stats.acknowledgedItems });

    // The rest of the stream, with the kills in it.
    rest = new Producer({ url: () => baseUrl, key: KEYS.producer, concurrency: 4, paceMs: 150 });
    const producing = rest.run(wl.batches.slice(20));
    await rest.acks(25);
    expect(rest.done).toBe(false);
    const victim = firstIngest[0]!;
    process.kill(victim, 'SIGKILL');
    // The engine's process starts another ingest process in its place.
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && !(childrenOf(proc.pid!).length === 2 && !childrenOf(proc.pid!).includes(victim))) await sleep(100);
    expect(childrenOf(proc.pid!).filter((p) => p !== victim)).toHaveLength(2);

    await rest.acks(25);
    expect(rest.done).toBe(false);
    const engineBefore = proc.pid!;
    const ingestBefore = childrenOf(engineBefore);
    await proc.kill9();
    // Its ingest processes end with it: nothing holds PORT or the data directory.
    const gone = Date.now() + 10_000;
    while (Date.now() < gone && ingestBefore.some(alive)) await sleep(50);
    expect(ingestBefore.filter(alive)).toEqual([]);
    await proc.start(60_000);
    await producing;
    expect(producer.stats.unexpectedRejections + rest.stats.unexpectedRejections).toBe(0);

    const acknowledged = [...producer.acknowledged, ...rest.acknowledged];
    // The usage API answers through an ingest process's forwarder.
    const totals = await checkTotals(baseUrl, wl.accounts, wl, acknowledged, 90_000, () => pipelineState(redis, prefix));
    expect(totals.mismatches).toEqual({});

    // A client that leaves its ad-hoc query cancels it through the forwarder: the query
    // would run to its time limit, holding the sandbox's one session; cancelled, the next
    // statement is answered long before that.
    const sql = (statement: string, signal?: AbortSignal) =>
      fetch(`${baseUrl}/v1/analytics/sql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.planner}` },
        body: JSON.stringify({ sql: statement }),
        ...(signal ? { signal } : {}),
      });
    const leftAt = Date.now();
    const leaving = new AbortController();
    const heavy = sql(HEAVY, leaving.signal).catch((err: unknown) => err);
    await sleep(1500);
    leaving.abort();
    expect(await heavy).toBeInstanceOf(Error);
    let next = await sql('SELECT 1 AS one');
    while (next.status === 429) {
      await sleep(100);
      next = await sql('SELECT 1 AS one');
    }
    expect(next.status).toBe(200);
    expect(((await next.json()) as { rows: unknown[] }).rows).toEqual([{ one: 1 }]);
    expect(Date.now() - leftAt).toBeLessThan(DEFAULT_SANDBOX_LIMITS.maxExecutionTimeS * 1000);

    expect(await proc.stop()).toBe(0);
    proc = undefined;

    const ch = createClickHouse({ DATA_DIR: dataDir, CLICKHOUSE_USER: 'default', CLICKHOUSE_PASSWORD: '' });
    const billed = await checkBilled(ch, acknowledged).finally(() => ch.close());
    expect(billed.missing).toEqual([]);
    expect(billed.unexpected).toEqual([]);
    expect(billed.billed).toBe(billed.distinctAcknowledged);
    expect(billed.aggregated).toBe(billed.billed);

    report({
      scenario: '7 ingest split (INGEST_PROCESSES=2)',
      sent: producer.stats.sentItems + rest.stats.sentItems,
      acknowledged: producer.stats.acknowledgedItems + rest.stats.acknowledgedItems,
      distinctAcknowledged: billed.distinctAcknowledged,
      billed: billed.billed,
      accounts: totals.accounts,
      faults: `SIGKILL of an ingest process (replaced), then of the engine's process (its ingest processes ended with it; restarted); ${rest.stats.refused} attempts refused and ${rest.stats.noAnswer} cut off, all retried`,
      seconds: (Date.now() - started) / 1000,
    });
  }, 240_000);
});
