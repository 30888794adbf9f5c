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
let slowStatements = 0;

describe('engine sessions', () => {
  let p: TestPipeline;
  let second: ClickHouseClient;
  let watcher: ClickHouseClient;

  /** A 2-second statement on `client`, marked so that the engine's process list can show it running. */
  function slow(client: ClickHouseClient, sql = 'SELECT sleep(2) AS slept', params?: Record<string, unknown>) {
    const marker = `slow-statement-${process.pid}-${++slowStatements}`;
    // A literal, not a comment: the engine may list a statement with bound parameters reformatted.
    return { marker, run: () => queryRows(client, `${sql}, '${marker}' AS marker`, params) };
  }

  /**
   * Runs the slow statement, waits until the engine lists it as running (asked on a session
   * of its own, without bound parameters, so the asking never waits), then runs `fast`;
   * says which finished first.
   */
  async function race(slow: { marker: string; run: () => Promise<unknown> }, fast: () => Promise<unknown>): Promise<string[]> {
    const finished: string[] = [];
    const slowDone = slow.run().then(() => finished.push('slow'));
    const deadline = Date.now() + 10_000;
    for (;;) {
      const [row] = await queryRows<{ n: string }>(watcher, `SELECT count() AS n FROM system.processes WHERE position(query, '${slow.marker}') > 0 AND position(query, 'system.processes') = 0`);
      if (Number(row!.n) > 0) break;
      if (Date.now() > deadline) throw new Error(`the slow statement ${slow.marker} never showed as running`);
      await new Promise((r) => setTimeout(r, 20));
    }
    await fast().then(() => finished.push('fast'));
    await slowDone;
    return finished;
  }

  beforeAll(async () => {
    p = await startTestPipeline('sessions');
    second = createClickHouse(p.config);
    watcher = createClickHouse(p.config);
    const ts = Math.floor(Date.now() / HOUR) * HOUR - HOUR + 60_000;
    const res = await p.post([{ id: 's-1', account_id: 'acct-sessions', resource_id: 'vm-1', resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 1.5, ts, interval_s: 60 }]);
    expect(res.status).toBe(202);
    await p.waitIdle();
  });
  afterAll(async () => {
    await watcher?.close();
    await second?.close();
    await p?.stop();
  });

  it('runs one statement at a time within a session, and a second session beside it', async () => {
    expect(await race(slow(p.ch!), () => queryRows(p.ch!, 'SELECT 1'))).toEqual(['slow', 'fast']);
    expect(await race(slow(p.ch!), () => queryRows(second, 'SELECT 1'))).toEqual(['fast', 'slow']);
  });

  it('runs statements with bound parameters one at a time across sessions, and literals beside them', async () => {
    const plain = createClickHouse(p.config);
    try {
      const bound = slow(plain, 'SELECT sleep({s:Float64}) AS slept', { s: 2 });
      expect(await race(bound, () => queryRows(second, 'SELECT {x:UInt8} AS x', { x: 1 }))).toEqual(['slow', 'fast']);
      // The pipeline's session writes integers as literals: off the lock.
      const inlined = slow(p.ch!, 'SELECT sleep({s:UInt8}) AS slept', { s: 2 });
      expect(await race(inlined, () => queryRows(second, 'SELECT {x:UInt8} AS x', { x: 1 }))).toEqual(['fast', 'slow']);
    } finally {
      await plain.close();
    }
  });

  it('answers the usage API while the pipeline’s own session is busy', async () => {
    const now = Math.floor(Date.now() / HOUR) * HOUR + HOUR;
    let usage: { status: number; body: any } | undefined;
    const order = await race(
      slow(p.ch!, 'SELECT sleep({s:UInt8}) AS slept', { s: 2 }),
      async () => (usage = await p.get(`/v1/accounts/acct-sessions/usage?from=${now - 3 * HOUR}&to=${now}`)),
    );
    expect(order).toEqual(['fast', 'slow']);
    expect(usage!.status).toBe(200);
    expect(usage!.body.rows.find((r: { metric: string }) => r.metric === 'cpu').base_total).toBe('1.5');
  });
});
