/**
 * Fault 5: poison jobs and the dead-letter set.
 *
 *  - A batch that ClickHouse rejects for as long as its cause lasts: a CHECK constraint
 *    on the raw table refuses one account's rows, so the acknowledged batch holding them
 *    fails every attempt (JOB_ATTEMPTS 3, backoff 1 s, 2 s) and is dead-lettered with
 *    ClickHouse's reason. Its hours stay incomplete meanwhile.
 *  - A job whose payload can never be valid: dead-lettered at its first attempt
 *    (UnrecoverableError), and back in the set after every replay.
 *  - Batches accepted after a dead letter are billed while it waits.
 *
 * The `dead-letters` command lists and inspects both with their data and reasons intact,
 * replays the first once the cause is removed, and the totals come out exact.
 */
import { decodeRawRow } from '../../schemas/raw-row.js';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { runDeadLettersCommand } from '../../cli/dead-letters.js';
import type { DeadLetter, DeadLetterSummary } from '../../workers/dead-letters.js';
import type { SentSample } from '../support/oracle.js';
import { KEYS, startTestPipeline, type TestPipeline } from '../support/pipeline.js';
import { Producer } from './support/producer.js';
import { report } from './support/report.js';
import { checkBilled, checkTotals, pipelineState } from './support/verify.js';
import { makeWorkload } from './support/workload.js';

const POISON_ACCOUNT = 'acct-poison';
const INVALID_JOB_ID = 'poison-invalid-payload';
const LATER_ACCOUNT = 'acct-later';

/** Runs the command in-process and returns its exit code and what it printed. */
async function cli(args: string[], settings: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const log = vi.spyOn(console, 'log').mockImplementation((...a: unknown[]) => void out.push(a.join(' ')));
  const error = vi.spyOn(console, 'error').mockImplementation((...a: unknown[]) => void err.push(a.join(' ')));
  try {
    const code = await runDeadLettersCommand([...args, ...settings]);
    return { code, out: out.join('\n'), err: err.join('\n') };
  } finally {
    log.mockRestore();
    error.mockRestore();
  }
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('fault 5: poison jobs land in the dead-letter set and are replayed by the CLI', () => {
  let p: TestPipeline | undefined;

  let producer: Producer | undefined;

  afterAll(async () => {
    producer?.stop();
    await p?.stop();
  });

  it('keeps data and reason, lists, inspects and replays them, and bills exactly', async () => {
    const started = Date.now();
    const wl = makeWorkload({ accounts: 10, resources: 40, hours: 1, batchSize: 250, seed: 19 });
    p = await startTestPipeline('f5dlq', { JOB_ATTEMPTS: '3', LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'fatal' });
    const pipeline = p;
    const ch = pipeline.ch!;
    const queue = pipeline.queue!;
    const settings = ['--redis-url', pipeline.config.REDIS_URL!, '--key-prefix', pipeline.config.KEY_PREFIX, '--data-dir', pipeline.dataDir, '--log-level', 'error'];

    producer = new Producer({ url: () => pipeline.url, key: KEYS.producer, concurrency: 2 });
    await producer.run(wl.batches);

    // 1. A batch ClickHouse refuses while the constraint stands. It is acknowledged (202):
    //    ingest only needs Redis.
    await ch.command({ query: `ALTER TABLE billing.samples_raw ADD CONSTRAINT no_poison CHECK account_id != '${POISON_ACCOUNT}'` });
    const poison: SentSample[] = [];
    for (let m = 1; m <= 30; m++) {
      const ts = wl.fromMs + m * 60_000;
      const base = { resource_type: 'vm', region: 'eu-west-1', ts, interval_s: 60 };
      poison.push({ ...base, id: `poison-${m}`, account_id: POISON_ACCOUNT, resource_id: 'vm-poison', metric: 'cpu', value: 12.345678 + m } as SentSample);
      // Another account's samples in the same batch wait with it.
      poison.push({ ...base, id: `bystander-${m}`, account_id: wl.accounts[0]!, resource_id: 'vm-bystander', metric: 'bandwidth_out', value: 1_000_003 * m } as SentSample);
    }
    const res = await pipeline.post(poison);
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(poison.length);
    const poisonId: string = res.body.batch_id;

    // 2. A job whose payload can never be valid.
    const invalidPayload = { batchId: 'not-a-uuid', batchSeq: 1, acceptedAtMs: Date.now(), rows: '', rowCount: 0, hours: [], accounts: [] };
    await queue.add('batch', invalidPayload as never, { jobId: INVALID_JOB_ID });

    // Both end in the dead-letter set: the invalid one at once, the refused one after
    // its three attempts (about 3 s of backoff).
    await until('two dead letters', async () => (await queue.getFailedCount()) === 2);
    // The refused batch's hours are reported incomplete: billing is told data is missing.
    const usage = await pipeline.get(`/v1/accounts/${POISON_ACCOUNT}/usage?from=${wl.fromMs}&to=${wl.toMs}`);
    expect(usage.body.complete).toBe(false);

    // A dead letter does not hold back what was accepted after it: the rollup folds batches
    // in acceptance order, and passes dead-lettered ones (a replay recomputes their hours).
    const later = [{ id: 'after-poison', account_id: LATER_ACCOUNT, resource_id: 'vm-later', resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 7.25, ts: wl.fromMs + 120_000, interval_s: 60 } as SentSample];
    expect((await pipeline.post(later)).status).toBe(202);
    await until('the later batch billed while the dead letter waits', async () => {
      const res = await pipeline.get(`/v1/accounts/${LATER_ACCOUNT}/usage?from=${wl.fromMs}&to=${wl.toMs}&granularity=total`);
      return res.body.rows?.[0]?.base_total === '7.25';
    });

    // list: both, with their reasons.
    const listed = await cli(['list', '--json'], settings);
    expect(listed.code).toBe(0);
    const list = JSON.parse(listed.out) as { total: number; dead_letters: DeadLetterSummary[] };
    expect(list.total).toBe(2);
    const byId = new Map(list.dead_letters.map((d) => [d.id, d]));
    expect(byId.get(poisonId)).toMatchObject({ attemptsMade: 3, maxAttempts: 3, payloadValid: true, batch: { rowCount: poison.length, accounts: 2 } });
    expect(byId.get(poisonId)!.reason).toContain('no_poison');
    expect(byId.get(INVALID_JOB_ID)).toMatchObject({ attemptsMade: 1, payloadValid: false });
    expect(byId.get(INVALID_JOB_ID)!.reason).toMatch(/^invalid batch payload: /);
    const table = await cli(['list'], settings);
    expect(table.out).toContain('2 dead-lettered batch job(s)');
    expect(table.out).toContain(poisonId);

    // show: the payload exactly as accepted, and each attempt's error.
    const shown = JSON.parse((await cli(['show', poisonId, '--json'], settings)).out) as DeadLetter;
    const data = shown.data as { batchId: string; rows: string };
    expect(data.batchId).toBe(poisonId);
    const rows = data.rows.trim().split('\n').map((l) => decodeRawRow(l));
    expect(rows.map((r) => r.id)).toEqual(poison.map((s) => s.id));
    expect(rows.map((r) => Number(r.value))).toEqual(poison.map((s) => s.value));
    expect(shown.stacktrace).toHaveLength(3);
    const human = await cli(['show', poisonId], settings);
    expect(human.out).toContain('reason:');
    expect(human.out).toContain('attempts:    3 of 3');
    const invalidShown = JSON.parse((await cli(['show', INVALID_JOB_ID, '--json'], settings)).out) as DeadLetter;
    expect(invalidShown.data).toEqual(invalidPayload);
    expect(invalidShown.payloadErrors.length).toBeGreaterThan(0);

    // Usage errors and unknown ids.
    expect((await cli(['show', 'no-such-job'], settings)).code).toBe(1);
    expect((await cli(['replay'], settings)).code).toBe(2);
    expect((await cli(['frobnicate'], settings)).code).toBe(2);
    expect((await cli(['--help'], settings)).out).toContain('replay --all');

    // Replaying the invalid one: it fails again at once and is back, never dropped, with
    // its history.
    expect((await cli(['replay', INVALID_JOB_ID], settings)).code).toBe(0);
    await until('the invalid job back in the dead letters', async () => (await queue.getJobState(INVALID_JOB_ID)) === 'failed');
    const again = JSON.parse((await cli(['show', INVALID_JOB_ID, '--json'], settings)).out) as DeadLetter;
    expect(again.reason).toMatch(/^invalid batch payload: /);
    expect(again.logs).toHaveLength(1);
    expect(again.logs[0]).toContain('replayed; it had failed after 1 attempt(s): invalid batch payload');
    expect(again.data).toEqual(invalidPayload);

    // Fix the cause, then replay the refused batch.
    await ch.command({ query: 'ALTER TABLE billing.samples_raw DROP CONSTRAINT no_poison' });
    const replayed = await cli(['replay', poisonId], settings);
    expect(replayed.code).toBe(0);
    expect(replayed.out).toContain(`replayed ${poisonId}`);
    await until('the replayed batch written', async () => (await queue.getJobState(poisonId)) === 'completed');

    // replay --all: only the invalid one is left; it goes back again.
    const all = await cli(['replay', '--all', '--json'], settings);
    expect(JSON.parse(all.out)).toMatchObject({ replayed: 1, results: [{ id: INVALID_JOB_ID, replayed: true }] });
    await until('the invalid job back again', async () => (await queue.getJobState(INVALID_JOB_ID)) === 'failed');
    expect((await cli(['count'], settings)).out).toBe('1');

    const acknowledged = [...producer.acknowledged, ...poison, ...later];
    const accounts = [...wl.accounts, POISON_ACCOUNT, LATER_ACCOUNT];
    const totals = await checkTotals(pipeline.url, accounts, wl, acknowledged, 60_000, () =>
      pipelineState(pipeline.redis.client, pipeline.config.KEY_PREFIX));
    expect(totals.mismatches).toEqual({});
    const billed = await checkBilled(ch, acknowledged);
    expect(billed.missing).toEqual([]);
    expect(billed.unexpected).toEqual([]);
    expect(billed.billed).toBe(billed.distinctAcknowledged);
    expect(billed.aggregated).toBe(billed.billed);

    report({
      scenario: '5 poison jobs + dead letters',
      sent: producer.stats.sentItems + poison.length,
      acknowledged: producer.stats.acknowledgedItems + poison.length,
      distinctAcknowledged: billed.distinctAcknowledged,
      billed: billed.billed,
      accounts: totals.accounts,
      faults: `1 acknowledged batch (${poison.length} samples) refused by ClickHouse, dead-lettered after 3 attempts and replayed by the CLI; ` +
        `1 invalid payload dead-lettered at its first attempt, replayed twice, back each time with its reason`,
      seconds: (Date.now() - started) / 1000,
    });
  }, 170_000);
});
