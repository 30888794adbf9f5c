/**
 * Fault 3: ClickHouse refusing writes for a while.
 *
 * While batches stream in, the raw billing table is renamed away twice (the embedded
 * engine cannot be "stopped" under a running process, but a missing table fails every
 * INSERT exactly like a dead server does), for longer than the first backoff steps. Batch
 * jobs fail and retry with exponential backoff (1 s, 2 s, 4 s …); ingest keeps answering
 * 202, because it only needs Redis. The attempt budget (JOB_ATTEMPTS 6: 31 s of backoff)
 * outlasts each outage, so no job is dead-lettered, and once the table is back every job
 * succeeds and the totals are exact.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { KEYS, startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { Producer } from './support/producer.js';
import { report } from './support/report.js';
import { checkBilled, checkTotals, pipelineState } from './support/verify.js';
import { makeWorkload } from './support/workload.js';

const OUTAGES = 2;
const OUTAGE_MS = 5_000;

describe('fault 3: ClickHouse writes failing for a while', () => {
  let p: TestPipeline | undefined;

  let producer: Producer | undefined;

  afterAll(async () => {
    producer?.stop();
    await p?.stop();
  });

  it('retries with backoff through the outage and bills exactly once it recovers', async () => {
    const started = Date.now();
    const wl = makeWorkload({ accounts: 20, resources: 100, hours: 2, batchSize: 250, seed: 13 });
    p = await startTestPipeline('f3ch', { JOB_ATTEMPTS: '6', LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'fatal' });
    const pipeline = p;
    const ch = pipeline.ch!;

    // Paced, so the stream goes on through both outages rather than finishing before them.
    producer = new Producer({ url: () => pipeline.url, key: KEYS.producer, concurrency: 2, paceMs: 150 });
    const producing = producer.run(wl.batches);

    let acceptedDuringOutages = 0;
    for (let k = 0; k < OUTAGES; k++) {
      await producer.acks(10);
      await ch.command({ query: 'RENAME TABLE billing.samples_raw TO billing.samples_raw_away' });
      const ackBefore = producer.stats.batches;
      await sleep(OUTAGE_MS);
      acceptedDuringOutages += producer.stats.batches - ackBefore;
      await ch.command({ query: 'RENAME TABLE billing.samples_raw_away TO billing.samples_raw' });
    }
    await producing;
    expect(producer.stats.unexpectedRejections).toBe(0);
    // Ingest does not depend on ClickHouse: it kept acknowledging during the outages.
    expect(acceptedDuringOutages).toBeGreaterThan(0);

    const totals = await checkTotals(pipeline.url, wl.accounts, wl, producer.acknowledged, 60_000, () =>
      pipelineState(pipeline.redis.client, pipeline.config.KEY_PREFIX));
    expect(totals.mismatches).toEqual({});
    const billed = await checkBilled(ch, producer.acknowledged);
    expect(billed.missing).toEqual([]);
    expect(billed.unexpected).toEqual([]);
    expect(billed.billed).toBe(billed.distinctAcknowledged);
    expect(billed.aggregated).toBe(billed.billed);

    // Jobs really failed and were retried, and none ran out of attempts.
    const metrics = await (await fetch(`${pipeline.url}/metrics`)).text();
    const failures = (final: boolean) => Number(new RegExp(`um_batch_failures_total\\{final="${final}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    expect(failures(false)).toBeGreaterThan(0);
    expect(failures(true)).toBe(0);
    expect(await pipeline.queue!.getFailedCount()).toBe(0);

    report({
      scenario: '3 ClickHouse writes failing',
      sent: producer.stats.sentItems,
      acknowledged: producer.stats.acknowledgedItems,
      distinctAcknowledged: billed.distinctAcknowledged,
      billed: billed.billed,
      accounts: totals.accounts,
      faults: `${OUTAGES} outages of ${OUTAGE_MS / 1000} s (raw table unwritable), ${failures(false)} failed job attempts retried with backoff, ` +
        `0 dead-lettered; ${acceptedDuringOutages} batches acknowledged during the outages`,
      seconds: (Date.now() - started) / 1000,
    });
  }, 170_000);
});
