/**
 * Fault 4: the same work delivered more than once, from both ends.
 *
 *  - Producer side: the first attempt of every request gets a 5–40 ms timeout, so many are
 *    abandoned after the pipeline already made them durable (the 202 is lost), and are
 *    sent again; a share of batches is also re-sent after its 202 (a producer that never
 *    saw the answer). Each re-send is a new batch with the same samples.
 *  - Worker side: a second worker on the queue stops renewing its job locks (the way a
 *    long GC pause or a network partition looks to BullMQ) and sleeps past the 1 s lock,
 *    so its jobs are declared stalled and redelivered to the pipeline's own worker. The
 *    stalled worker then wakes and finishes its write anyway: half of them write before
 *    sleeping, half after, so the duplicate write lands both before and after the
 *    redelivered one.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { QueueEvents, Worker, type Job } from 'bullmq';
import { afterAll, describe, expect, it } from 'vitest';
import { QUEUE_NAMES, type BatchJob } from '../../schemas/queues.js';
import { createBatchWriter } from '../../workers/batch-writer.js';
import { KEYS, startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { Producer } from './support/producer.js';
import { report } from './support/report.js';
import { checkBilled, checkTotals, pipelineState } from './support/verify.js';
import { makeWorkload } from './support/workload.js';

const STALLING_JOBS = 8;
const LOCK_MS = 1000;

describe('fault 4: client-side re-sends and jobs redelivered after a lost lock', () => {
  let p: TestPipeline | undefined;
  let stalling: Worker<BatchJob> | undefined;
  let events: QueueEvents | undefined;

  let producer: Producer | undefined;

  afterAll(async () => {
    producer?.stop();
    await stalling?.close(true);
    await events?.close();
    await p?.stop();
  });

  it('bills every sample once however often it is delivered', async () => {
    const started = Date.now();
    const wl = makeWorkload({ accounts: 20, resources: 100, hours: 2, batchSize: 250, seed: 17 });
    p = await startTestPipeline('f4redeliver', { JOB_LOCK_MS: String(LOCK_MS), LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'fatal' });
    const pipeline = p;

    events = new QueueEvents(QUEUE_NAMES.batches, { connection: pipeline.redis.options, prefix: pipeline.redisKeys.bullPrefix });
    let stalledEvents = 0;
    events.on('stalled', () => stalledEvents++);
    await events.waitUntilReady();

    // The stalling worker: same queue, same writer, but it never renews its lock.
    const write = createBatchWriter({ ch: pipeline.ch!, redis: pipeline.redis.client, keys: pipeline.redisKeys });
    const taken: string[] = [];
    let lateWrites = 0;
    let stallingErrors = 0;
    stalling = new Worker<BatchJob>(
      QUEUE_NAMES.batches,
      async (job: Job<BatchJob>) => {
        const n = taken.push(String(job.id));
        if (n === STALLING_JOBS) void stalling!.close(); // take no more; finish these
        if (n % 2 === 0) await write(job); // written before the pause …
        await sleep(3 * LOCK_MS); // … the lock lapses, the job is redelivered …
        await write(job); // … and written (again) after it
        lateWrites++;
      },
      {
        connection: pipeline.redis.options,
        prefix: pipeline.redisKeys.bullPrefix,
        concurrency: 4,
        lockDuration: LOCK_MS,
        skipLockRenewal: true,
        stalledInterval: LOCK_MS,
      },
    );
    // Completing a job whose lock it lost fails: expected, and counted.
    stalling.on('error', () => stallingErrors++);

    producer = new Producer({
      url: () => pipeline.url,
      key: KEYS.producer,
      concurrency: 3,
      paceMs: 120,
      timeoutMs: (attempt) => (attempt === 1 ? 5 + Math.floor(Math.random() * 35) : 15_000),
      resendRate: 0.2,
    });
    await producer.run(wl.batches);
    expect(producer.stats.unexpectedRejections).toBe(0);
    expect(taken.length).toBe(STALLING_JOBS); // the stream lasted long enough to feed it
    while (lateWrites < taken.length) await sleep(20);
    await stalling.close();

    const totals = await checkTotals(pipeline.url, wl.accounts, wl, producer.acknowledged, 60_000, () =>
      pipelineState(pipeline.redis.client, pipeline.config.KEY_PREFIX));
    expect(totals.mismatches).toEqual({});
    const billed = await checkBilled(pipeline.ch!, producer.acknowledged);
    expect(billed.missing).toEqual([]);
    expect(billed.unexpected).toEqual([]);
    expect(billed.billed).toBe(billed.distinctAcknowledged);
    expect(billed.aggregated).toBe(billed.billed);

    // Every job the stalling worker held was declared stalled and redelivered.
    expect(taken.length).toBe(STALLING_JOBS);
    expect(stalledEvents).toBeGreaterThanOrEqual(STALLING_JOBS);
    expect(producer.stats.timeouts).toBeGreaterThan(0);
    expect(await pipeline.queue!.getFailedCount()).toBe(0);

    report({
      scenario: '4 client re-sends + lost-lock redelivery',
      sent: producer.stats.sentItems,
      acknowledged: producer.stats.acknowledgedItems,
      distinctAcknowledged: billed.distinctAcknowledged,
      billed: billed.billed,
      accounts: totals.accounts,
      faults: `${producer.stats.timeouts} requests timed out client-side and re-sent, ${producer.stats.resends} batches re-sent after their 202, ` +
        `${taken.length} jobs held by a worker that lost its lock (${stalledEvents} stalled-job redeliveries, ${lateWrites} late duplicate writes)`,
      seconds: (Date.now() - started) / 1000,
    });
  }, 170_000);
});
