/**
 * Fault 1: the worker process killed with SIGKILL mid-job, again and again.
 *
 * The pipeline runs as `usage-meter start` (one process: ingest, batch worker and rollup
 * on the embedded engine) with a 1 s job lock, so a job orphaned by a kill is stalled and
 * redelivered about a second after the next start. A producer streams a known workload
 * the whole time and retries until it gets a 202, as agents do while a server restarts.
 * Each kill waits until the process holds at least one claimed job (BullMQ's active list);
 * the job ids still active right after the kill are the ones it died in the middle of.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
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

const KILLS = 12;
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const API_KEYS = Object.entries(KEYS).map(([role, secret]) => `${role}:${role}-test:${secret}`).join(',');

describe('fault 1: worker process SIGKILLed mid-job, repeatedly', () => {
  const dataDir = mkdtempSync(path.join(os.tmpdir(), 'um-faults-kill-'));
  const prefix = uniquePrefix('f1kill');
  let proc: PipelineProcess | undefined;
  const redis = new Redis(REDIS_URL);

  let producer: Producer | undefined;

  afterAll(async () => {
    producer?.stop();
    await proc?.stop();
    redis.disconnect();
    await deleteKeys(REDIS_URL, prefix);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(`loses nothing acknowledged and counts nothing twice across ${KILLS} kills`, async () => {
    const started = Date.now();
    const wl = makeWorkload({ accounts: 20, resources: 100, hours: 2, batchSize: 250 });
    const port = await freePort();
    const baseUrl = `http://127.0.0.1:${port}`;
    proc = new PipelineProcess({
      DATA_DIR: dataDir, KEY_PREFIX: prefix, PORT: String(port), API_KEYS, REDIS_URL,
      JOB_LOCK_MS: '1000', ROLLUP_INTERVAL_MS: '100', LOG_LEVEL: 'warn',
      // A kill between ingest's claim and its job leaves a mark the reconciler clears:
      // passes 5 s apart bound that wait (default: a minute).
      INFLIGHT_RECONCILE_MS: '5000',
    });
    // A redelivered batch the engine had dropped as a false repeat (workers/redelivery-check.ts).
    const rewrites = proc.watch('a redelivered batch was short after its insert');
    let lifeStart = Date.now(); // the previous process is dead before this is taken
    await proc.start();

    let acks = 0;
    producer = new Producer({ url: () => baseUrl, key: KEYS.producer, concurrency: 3, paceMs: 25, onAck: () => acks++ });
    const producing = producer.run(wl.batches);

    const queueKey = `${prefix}:bull:batches`;
    // Jobs this life claimed (BullMQ stamps processedOn when a job becomes active) and has
    // not finished: after a kill, exactly the jobs it died in the middle of.
    const claimedSince = async (since: number) => {
      const ids = await redis.lrange(`${queueKey}:active`, 0, -1);
      const stamps = await Promise.all(ids.map((id) => redis.hget(`${queueKey}:${id}`, 'processedOn')));
      return ids.filter((_id, i) => Number(stamps[i] ?? 0) >= since);
    };
    let midJob = 0;
    let orphanedJobs = 0;
    for (let k = 0; k < KILLS; k++) {
      const acksAtStart = acks;
      const deadline = Date.now() + 10_000;
      // Let this life take some batches, then strike while it holds a claimed job.
      while (Date.now() < deadline) {
        if ((acks - acksAtStart >= 3 || producer.done) && (await claimedSince(lifeStart)).length > 0) break;
        await sleep(5);
      }
      await proc.kill9();
      const orphans = await claimedSince(lifeStart);
      if (orphans.length > 0) midJob++;
      orphanedJobs += orphans.length;
      lifeStart = Date.now();
      await proc.start();
    }
    await producing;
    expect(producer.stats.unexpectedRejections).toBe(0);

    const totals = await checkTotals(baseUrl, wl.accounts, wl, producer.acknowledged, 60_000, () => pipelineState(redis, prefix));
    const stateAtComplete = await pipelineState(redis, prefix);
    expect(await proc.stop()).toBe(0);
    proc = undefined;

    // The process is gone: open its data directory here to see what billing counted. Read
    // before the totals are judged, so a mismatch says where the samples went missing: not
    // in the raw rows at all, or written but not in the aggregates.
    const ch = createClickHouse({ DATA_DIR: dataDir, CLICKHOUSE_USER: 'default', CLICKHOUSE_PASSWORD: '' });
    const billed = await checkBilled(ch, producer.acknowledged).finally(() => ch.close());
    expect(
      totals.mismatches,
      `counted ${billed.billed} of ${billed.distinctAcknowledged} distinct acknowledged samples (missing ${billed.missing.length}: ${billed.missing.slice(0, 3).join(', ')}), ` +
        `aggregated ${billed.aggregated}; at complete: ${stateAtComplete}`,
    ).toEqual({});
    expect(billed.missing).toEqual([]);
    expect(billed.unexpected).toEqual([]);
    expect(billed.billed).toBe(billed.distinctAcknowledged);
    expect(billed.aggregated).toBe(billed.billed);
    expect(midJob).toBeGreaterThanOrEqual(10);

    report({
      scenario: '1 worker SIGKILL',
      sent: producer.stats.sentItems,
      acknowledged: producer.stats.acknowledgedItems,
      distinctAcknowledged: billed.distinctAcknowledged,
      billed: billed.billed,
      accounts: totals.accounts,
      faults: `${KILLS} SIGKILLs (${midJob} mid-job, ${orphanedJobs} jobs orphaned and redelivered, ${rewrites()} found short after a false duplicate and written again), ${producer.stats.refused} producer attempts refused while down and ${producer.stats.noAnswer} cut off mid-request, all retried`,
      seconds: (Date.now() - started) / 1000,
    });
  }, 170_000);
});
