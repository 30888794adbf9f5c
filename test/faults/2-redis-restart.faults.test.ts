/**
 * Fault 2: Redis killed with SIGKILL and restarted from its AOF, while batches stream in
 * and jobs run.
 *
 * The pipeline gets a redis-server of its own with `appendonly yes`, `appendfsync always`
 * and no RDB snapshots, so everything it knows after a restart comes from the AOF. With
 * `always`, Redis writes and fsyncs each command before it answers, so everything ingest
 * was told (the batch's job, its in-flight mark, the sequence number) before answering 202
 * is on disk. docs/faults.md says what `everysec` risks instead.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { KEYS, startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { RedisServer, freePort } from './support/processes.js';
import { Producer } from './support/producer.js';
import { report } from './support/report.js';
import { checkBilled, checkTotals, pipelineState } from './support/verify.js';
import { makeWorkload } from './support/workload.js';

const RESTARTS = 3;

describe('fault 2: Redis SIGKILLed and restarted from its AOF', () => {
  let server: RedisServer | undefined;
  let p: TestPipeline | undefined;

  let producer: Producer | undefined;

  afterAll(async () => {
    producer?.stop();
    await p?.stop().catch(() => undefined);
    await server?.stop();
  });

  it(`loses nothing acknowledged across ${RESTARTS} Redis crashes (appendfsync always)`, async () => {
    const started = Date.now();
    server = new RedisServer(await freePort(), 'always');
    await server.start();
    const wl = makeWorkload({ accounts: 20, resources: 100, hours: 2, batchSize: 250, seed: 11 });
    p = await startTestPipeline('f2redis', {
      REDIS_URL: server.url,
      JOB_LOCK_MS: '2000',
      // A request cut off between ingest's claim and its job leaves a mark the reconciler
      // clears: passes 5 s apart bound that wait (default: a minute).
      INFLIGHT_RECONCILE_MS: '5000',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'fatal',
    });
    const pipeline = p;
    const config = await pipeline.redis.client.config('GET', 'appendfsync');
    expect(config).toEqual(['appendfsync', 'always']);

    producer = new Producer({ url: () => pipeline.url, key: KEYS.producer, concurrency: 3, paceMs: 20 });
    const producing = producer.run(wl.batches);

    const downMs: number[] = [];
    for (let k = 0; k < RESTARTS; k++) {
      await producer.acks(8);
      expect(producer.done).toBe(false); // the faults hit a live stream
      await server.kill9();
      const down = Date.now();
      await sleep(700); // requests and jobs in progress meet a dead Redis
      await server.restart();
      downMs.push(Date.now() - down);
      // The pipeline itself must come back without a restart of its own.
      const deadline = Date.now() + 15_000;
      for (;;) {
        const ready = await fetch(`${pipeline.url}/readyz`);
        if (ready.status === 200) break;
        if (Date.now() > deadline) throw new Error(`pipeline not ready 15 s after Redis came back: ${await ready.text()}`);
        await sleep(100);
      }
    }
    await producing;
    expect(producer.stats.unexpectedRejections).toBe(0);

    const probe = new Redis(server.url);
    try {
      const totals = await checkTotals(pipeline.url, wl.accounts, wl, producer.acknowledged, 60_000, () => pipelineState(probe, pipeline.config.KEY_PREFIX));
      expect(totals.mismatches).toEqual({});
      const billed = await checkBilled(pipeline.ch!, producer.acknowledged);
      expect(billed.missing).toEqual([]);
      expect(billed.unexpected).toEqual([]);
      expect(billed.billed).toBe(billed.distinctAcknowledged);
      expect(billed.aggregated).toBe(billed.billed);
      expect(await pipeline.queue!.getFailedCount()).toBe(0);

      report({
        scenario: '2 Redis SIGKILL + AOF restart',
        sent: producer.stats.sentItems,
        acknowledged: producer.stats.acknowledgedItems,
        distinctAcknowledged: billed.distinctAcknowledged,
        billed: billed.billed,
        accounts: totals.accounts,
        faults: `${RESTARTS} Redis SIGKILLs, down ${downMs.map((ms) => `${(ms / 1000).toFixed(1)} s`).join(' / ')} each; ` +
          `${producer.stats.errorAnswers} requests answered 5xx and ${producer.stats.noAnswer} cut off, all retried`,
        seconds: (Date.now() - started) / 1000,
      });
    } finally {
      probe.disconnect();
    }
  }, 170_000);
});
