/**
 * The engine's deduplication log can hold an insert's token without its rows: MergeTree
 * writes the token before it commits the part, and a process killed between the two keeps
 * the token only (workers/redelivery-check.ts; `npm run engine:dedup-crash` kills a real
 * engine mid-insert until it happens). The state is made here without a kill: rows deleted
 * by a mutation leave their token behind in the same way, which this test shows first.
 *
 * What must hold on real Redis and the real engine: a first delivery trusts the token (the
 * engine drops the insert as a repeat), a redelivered job counts its rows, writes again
 * what is missing under a token of its own and the bill comes out exact; a redelivered job
 * whose rows are all there writes nothing twice; the same holds for a batch written around
 * a row the engine refuses.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../lib/clickhouse.js';
import { createBatchWriter } from '../workers/batch-writer.js';
import { batchJobOf } from './support/batch-job.js';
import { expectedTotals, type SentSample } from './support/oracle.js';
import { startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
const end = Math.floor(Date.now() / HOUR) * HOUR;

function samplesOf(prefix: string, accounts: number): SentSample[] {
  const out: SentSample[] = [];
  for (let a = 0; a < accounts; a++) {
    for (let m = 1; m <= 90; m++) {
      const base = { account_id: `acct-${prefix}-${a}`, resource_id: `vm-${prefix}-${a}`, resource_type: 'vm', region: 'eu-west-1', ts: end - 2 * HOUR + m * 60_000, interval_s: 60 };
      out.push({ ...base, id: `${prefix}-c-${a}-${m}`, metric: 'cpu', value: Number((m * 0.125).toFixed(3)) } as SentSample);
      out.push({ ...base, id: `${prefix}-o-${a}-${m}`, metric: 'bandwidth_out', value: 1_000_003 * m } as SentSample);
    }
  }
  return out;
}

describe('a redelivered batch after a crash mid-insert', () => {
  let p: TestPipeline;
  const rewritten: { batchId: string; missing: number }[] = [];
  let write: ReturnType<typeof createBatchWriter>;

  beforeAll(async () => {
    p = await startTestPipeline('redelivery');
    write = createBatchWriter({ ch: p.ch!, redis: p.redis.client, keys: p.redisKeys, onRewritten: (batchId, missing) => rewritten.push({ batchId, missing }) });
  });
  afterAll(async () => {
    await p?.stop();
  });

  /** A batch job as ingest makes it, not queued: the test plays the worker. */
  const jobOf = (samples: SentSample[]) => batchJobOf(p, samples);

  const rawRows = async (batchSeq: number) =>
    Number((await queryRows<{ n: string }>(p.ch!, 'SELECT count() AS n FROM billing.samples_raw WHERE batch_seq = {s:UInt64}', { s: batchSeq }))[0]!.n);

  /** The state a kill between the engine's token record and its part commit leaves behind. */
  const loseRowsKeepToken = (batchSeq: number) =>
    p.ch!.command({ query: 'ALTER TABLE billing.samples_raw DELETE WHERE batch_seq = {s:UInt64} SETTINGS mutations_sync = 2', query_params: { s: batchSeq } });

  async function totals(prefix: string, accounts: number): Promise<Map<string, string>> {
    await p.waitIdle();
    const out = new Map<string, string>();
    for (let a = 0; a < accounts; a++) {
      const res = await p.get(`/v1/accounts/acct-${prefix}-${a}/usage?from=${end - 2 * HOUR}&to=${end}`);
      expect(res.body.complete).toBe(true);
      for (const r of res.body.rows) out.set(`acct-${prefix}-${a}|${r.metric}`, r.base_total);
    }
    return out;
  }

  it('writes again what the engine dropped as a false repeat, and bills it exactly', async () => {
    const samples = samplesOf('hole', 3);
    const job = await jobOf(samples);
    await write({ data: job });
    expect(await rawRows(job.batchSeq)).toBe(samples.length);
    expect(await totals('hole', 3)).toEqual(expectedTotals(samples));

    await loseRowsKeepToken(job.batchSeq);
    expect(await rawRows(job.batchSeq)).toBe(0);
    // A first delivery trusts the token, and the engine drops the insert: the hole itself.
    await write({ data: job, attemptsStarted: 1, attemptsMade: 0 });
    expect(await rawRows(job.batchSeq)).toBe(0);
    expect(rewritten).toEqual([]);

    // Delivered again (the job's earlier attempt died): counted, found short, written again.
    await write({ data: job, attemptsStarted: 2, attemptsMade: 0 });
    expect(await rawRows(job.batchSeq)).toBe(samples.length);
    expect(rewritten).toEqual([{ batchId: job.batchId, missing: samples.length }]);
    expect(await totals('hole', 3)).toEqual(expectedTotals(samples));
  });

  it('writes nothing twice when a redelivered batch is all there', async () => {
    const samples = samplesOf('whole', 2);
    const job = await jobOf(samples);
    await write({ data: job });
    rewritten.length = 0;
    await write({ data: job, attemptsStarted: 3, attemptsMade: 1 });
    expect(await rawRows(job.batchSeq)).toBe(samples.length);
    expect(rewritten).toEqual([]);
    expect(await totals('whole', 2)).toEqual(expectedTotals(samples));
  });

  it('writes again the taken rows of a batch written around a refused row', async () => {
    const samples = samplesOf('poison', 1);
    const job = await jobOf(samples);
    // One row the engine cannot parse (a lone surrogate escape), as in the poison-batch suite.
    const lines = job.rows.split('\n').filter(Boolean);
    lines[5] = lines[5]!.replace(`"vm-poison-0"`, '"vm-\\ud800"');
    const poisoned = { ...job, rows: lines.join('\n') + '\n' };
    await expect(write({ data: poisoned })).resolves.toEqual({ rows: samples.length - 1 });
    expect(await rawRows(job.batchSeq)).toBe(samples.length - 1);

    await loseRowsKeepToken(job.batchSeq);
    rewritten.length = 0;
    await expect(write({ data: poisoned, attemptsStarted: 2, attemptsMade: 0 })).resolves.toEqual({ rows: samples.length - 1 });
    expect(await rawRows(job.batchSeq)).toBe(samples.length - 1);
    expect(rewritten).toEqual([{ batchId: job.batchId, missing: samples.length - 1 }]);
    const [quarantined] = await queryRows<{ n: string }>(p.ch!, 'SELECT count() AS n FROM billing.samples_raw WHERE batch_seq = {s:UInt64} AND item = 5', { s: job.batchSeq });
    expect(Number(quarantined!.n)).toBe(0);
  });
});
