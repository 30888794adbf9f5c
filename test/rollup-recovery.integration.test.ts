/**
 * The rollup recovers when it has no record of what it folded: after an upgrade from a
 * version that recomputed whole hours (aggregate rows without through_seq, no progress
 * key in Redis), or a Redis restored from an old snapshot. It then recomputes the pending
 * hours whole instead of folding from sequence 0 onto aggregates that already hold those
 * rows, and the bill stays exact. Also: a sample becomes visible without waiting for the
 * rollup's timer, because writing a batch kicks the next round.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedTotals, type SentSample } from './support/oracle.js';
import { startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
const end = Math.floor(Date.now() / HOUR) * HOUR;
const start = end - 2 * HOUR;
const ACCOUNTS = ['acct-rec-1', 'acct-rec-2', 'acct-rec-3'];

function samples(from: number, to: number, tag: string): SentSample[] {
  const out: SentSample[] = [];
  for (let t = from + 60_000; t <= to; t += 60_000) {
    for (const account of ACCOUNTS) {
      out.push({ id: `${account}:${t}:${tag}`, account_id: account, resource_id: `vm-${account}`, resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 1.25 + (t / 60_000) % 7, ts: new Date(t).toISOString(), interval_s: 60 } as SentSample);
    }
  }
  return out;
}

describe('rollup recovery', () => {
  let p: TestPipeline;
  const range = `from=${new Date(start).toISOString()}&to=${new Date(end).toISOString()}&granularity=total`;
  const billed = async (account: string) => {
    const res = await p.get(`/v1/accounts/${account}/usage?${range}`);
    return { complete: res.body.complete as boolean, cpu: res.body.rows.find((r: { metric: string }) => r.metric === 'cpu')?.base_total as string | undefined };
  };

  beforeAll(async () => {
    // A timer far longer than the test: only kicks can make samples visible in time.
    p = await startTestPipeline('rollup-recovery', { ROLLUP_INTERVAL_MS: '600000', ROLLUP_MIN_GAP_MS: '50' });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('makes a written batch visible at once, without waiting for the rollup timer', async () => {
    const first = samples(start, start + 30 * 60_000, 'a');
    expect((await p.post(first)).status).toBe(202);
    const want = expectedTotals(first);
    const deadline = Date.now() + 20_000;
    let got = await billed(ACCOUNTS[0]!);
    while (got.cpu !== want.get(`${ACCOUNTS[0]}|cpu`) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      got = await billed(ACCOUNTS[0]!);
    }
    expect(got.cpu).toBe(want.get(`${ACCOUNTS[0]}|cpu`));
  });

  it('recomputes whole hours when there is no record of folded batches, and bills exactly', async () => {
    const first = samples(start, start + 30 * 60_000, 'a');
    await p.waitIdle();
    // Aggregates as an earlier version wrote them (they hold every row, but say through
    // sequence 0), and no record of folding in Redis…
    for (const table of ['billing.usage_hourly', 'billing.ingest_stats_hourly']) {
      await p.ch!.command({ query: `ALTER TABLE ${table} UPDATE through_seq = 0 WHERE 1`, clickhouse_settings: { mutations_sync: '2' } });
    }
    await p.redis.client.del(p.redisKeys.foldedThrough);
    // …while new batches arrive, with re-sends of already folded samples among them.
    const second = samples(start + 30 * 60_000, end, 'b');
    const resent = first.slice(0, 40);
    expect((await p.post([...resent, ...second])).status).toBe(202);
    await p.waitIdle();

    const want = expectedTotals([...first, ...resent, ...second]);
    for (const account of ACCOUNTS) {
      const got = await billed(account);
      expect(got.complete).toBe(true);
      expect(got.cpu).toBe(want.get(`${account}|cpu`));
    }
    // The progress record is back, so later batches are folded again.
    expect(Number(await p.redis.client.get(p.redisKeys.foldedThrough))).toBeGreaterThan(0);
  });
});
