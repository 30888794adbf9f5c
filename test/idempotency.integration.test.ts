/**
 * Idempotency on real parts: a batch job processed again (redelivery), raw rows written
 * again outside the engine's deduplication token, and a request posted twice all leave
 * every total unchanged.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../lib/clickhouse.js';
import { batchJobSchema } from '../schemas/queues.js';
import { decodeRawRow } from '../schemas/raw-row.js';
import { createBatchWriter, insertRawRows } from '../workers/batch-writer.js';
import { expectedTotals, type SentSample } from './support/oracle.js';
import { startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
const end = Math.floor(Date.now() / HOUR) * HOUR;

const samples: SentSample[] = [];
for (let a = 0; a < 3; a++) {
  for (let m = 1; m <= 120; m++) {
    const ts = end - 2 * HOUR + m * 60_000;
    const base = { account_id: `acct-idem-${a}`, resource_id: `vm-idem-${a}`, resource_type: 'vm', region: 'us-east-1', ts, interval_s: 60 };
    samples.push({ ...base, id: `c-${a}-${m}`, metric: 'cpu', value: Number((m * 0.333333).toFixed(6)) } as SentSample);
    samples.push({ ...base, id: `o-${a}-${m}`, metric: 'bandwidth_out', value: 7_777_777 * m } as SentSample);
  }
}

describe('idempotency', () => {
  let p: TestPipeline;
  let batchId: string;

  async function totals(): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const a of [0, 1, 2]) {
      const res = await p.get(`/v1/accounts/acct-idem-${a}/usage?from=${end - 2 * HOUR}&to=${end}`);
      expect(res.body.complete).toBe(true);
      for (const r of res.body.rows) out.set(`acct-idem-${a}|${r.metric}`, r.base_total);
    }
    return out;
  }

  beforeAll(async () => {
    p = await startTestPipeline('idem');
    const res = await p.post(samples);
    expect(res.status).toBe(202);
    batchId = res.body.batch_id;
    await p.waitIdle();
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('bills the batch once', async () => {
    expect(await totals()).toEqual(expectedTotals(samples));
  });

  it('changes nothing when the same batch job is processed again', async () => {
    const before = await totals();
    const job = await p.queue!.getJob(batchId);
    expect(job?.data.batchId).toBe(batchId);
    // A redelivered job: the same payload goes through the queue and the worker again.
    const redelivered = await p.queue!.add('batch', job!.data, { jobId: `${batchId}-redelivered` });
    while ((await redelivered.getState()) !== 'completed') await sleep(50);
    await p.waitIdle();
    // And the writer called directly twice more, as after a crash before completion.
    const write = createBatchWriter({ ch: p.ch!, redis: p.redis.client, keys: p.redisKeys });
    await write({ data: job!.data });
    await write({ data: job!.data });
    await p.waitIdle();
    expect(await totals()).toEqual(before);
    // The engine honoured the deduplication token: the repeats added no raw rows at all.
    const [raw] = await queryRows<{ n: string }>(p.ch!, 'SELECT count() AS n FROM billing.samples_raw');
    expect(Number(raw!.n)).toBe(samples.length);
  });

  it('changes nothing when raw rows are written again outside the deduplication token', async () => {
    const before = await totals();
    const job = batchJobSchema.parse((await p.queue!.getJob(batchId))!.data);
    await insertRawRows(p.ch!, job, { insert_deduplication_token: 'a-token-the-engine-has-not-seen' });
    const [raw] = await queryRows<{ n: string }>(p.ch!, 'SELECT count() AS n FROM billing.samples_raw');
    expect(Number(raw!.n)).toBe(2 * samples.length); // the copy really is in the table
    for (const hour of job.hours) await p.redis.client.hincrby(p.redisKeys.dirtyHours, String(hour), 1);
    await p.waitIdle();
    expect(await totals()).toEqual(before);
  });

  it('still writes jobs queued before rows were compact (JSONEachRow), and bills nothing twice', async () => {
    const before = await totals();
    const job = batchJobSchema.parse((await p.queue!.getJob(batchId))!.data);
    const [{ n: rawBefore }] = (await queryRows<{ n: string }>(p.ch!, 'SELECT count() AS n FROM billing.samples_raw')) as [{ n: string }];
    const legacy = {
      ...job,
      batchId: crypto.randomUUID(),
      rows: job.rows.trim().split('\n').map((l) => JSON.stringify(decodeRawRow(l))).join('\n') + '\n',
    };
    delete (legacy as { rowFormat?: string }).rowFormat;
    await createBatchWriter({ ch: p.ch!, redis: p.redis.client, keys: p.redisKeys })({ data: legacy });
    await p.waitIdle();
    const [{ n: rawAfter }] = (await queryRows<{ n: string }>(p.ch!, 'SELECT count() AS n FROM billing.samples_raw')) as [{ n: string }];
    expect(Number(rawAfter) - Number(rawBefore)).toBe(samples.length); // the old format was inserted…
    expect(await totals()).toEqual(before); // …and counted once
  });

  it('changes nothing when the same request is posted twice', async () => {
    const before = await totals();
    const again = await p.post(samples);
    expect(again.status).toBe(202);
    expect(again.body.accepted).toBe(samples.length);
    await p.waitIdle();
    expect(await totals()).toEqual(before);
  });
});
