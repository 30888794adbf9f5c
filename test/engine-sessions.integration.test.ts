/**
 * Why the API reads on an engine session of its own (app/pipeline.ts): an embedded session
 * runs one statement at a time, and a second session on the same data runs beside it,
 * except that chdb runs every statement with bound parameters under one process-wide lock;
 * so the pipeline's session writes its integer parameters as literals
 * (lib/inline-integer-params.ts). The assertions are about order, not speed: which
 * statement finished first.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClickHouse, queryRows, type ClickHouseClient } from '../lib/clickhouse.js';
import { startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
const SLOW = 'SELECT sleep(2) AS slept';

/** Runs `slow` and, once it has started, `fast`; says which finished first. */
async function race(slow: () => Promise<unknown>, fast: () => Promise<unknown>): Promise<string[]> {
  const finished: string[] = [];
  const slowDone = slow().then(() => finished.push('slow'));
  await new Promise((r) => setTimeout(r, 200)); // the slow statement is running
  await fast().then(() => finished.push('fast'));
  await slowDone;
  return finished;
}

describe('engine sessions', () => {
  let p: TestPipeline;
  let second: ClickHouseClient;

  beforeAll(async () => {
    p = await startTestPipeline('sessions');
    second = createClickHouse(p.config);
    const ts = Math.floor(Date.now() / HOUR) * HOUR - HOUR + 60_000;
    const res = await p.post([{ id: 's-1', account_id: 'acct-sessions', resource_id: 'vm-1', resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 1.5, ts, interval_s: 60 }]);
    expect(res.status).toBe(202);
    await p.waitIdle();
  });
  afterAll(async () => {
    await second?.close();
    await p?.stop();
  });

  it('runs one statement at a time within a session, and a second session beside it', async () => {
    expect(await race(() => queryRows(p.ch!, SLOW), () => queryRows(p.ch!, 'SELECT 1'))).toEqual(['slow', 'fast']);
    expect(await race(() => queryRows(p.ch!, SLOW), () => queryRows(second, 'SELECT 1'))).toEqual(['fast', 'slow']);
  });

  it('runs statements with bound parameters one at a time across sessions, and literals beside them', async () => {
    const plain = createClickHouse(p.config);
    try {
      const boundSlow = () => queryRows(plain, 'SELECT sleep({s:Float64}) AS slept', { s: 2 });
      expect(await race(boundSlow, () => queryRows(second, 'SELECT {x:UInt8} AS x', { x: 1 }))).toEqual(['slow', 'fast']);
      // The pipeline's session writes integers as literals: off the lock.
      const inlinedSlow = () => queryRows(p.ch!, 'SELECT sleep({s:UInt8}) AS slept', { s: 2 });
      expect(await race(inlinedSlow, () => queryRows(second, 'SELECT {x:UInt8} AS x', { x: 1 }))).toEqual(['fast', 'slow']);
    } finally {
      await plain.close();
    }
  });

  it('answers the usage API while the pipeline’s own session is busy', async () => {
    const now = Math.floor(Date.now() / HOUR) * HOUR + HOUR;
    let usage: { status: number; body: any } | undefined;
    const order = await race(
      () => queryRows(p.ch!, 'SELECT sleep({s:UInt8}) AS slept', { s: 2 }),
      async () => (usage = await p.get(`/v1/accounts/acct-sessions/usage?from=${now - 3 * HOUR}&to=${now}`)),
    );
    expect(order).toEqual(['fast', 'slow']);
    expect(usage!.status).toBe(200);
    expect(usage!.body.rows.find((r: { metric: string }) => r.metric === 'cpu').base_total).toBe('1.5');
  });
});
