/**
 * The search for refused rows (workers/poison-isolation.ts), on its own: an "engine" that
 * refuses any insert holding a marked row, as a parse error does. The integration test
 * (test/adversarial/poison-batch) runs the same code against the real engine.
 */
import { describe, expect, it } from 'vitest';
import { isolateRefusedRows, MAX_ISOLATION_INSERTS } from '../workers/poison-isolation.js';
import type { BatchJob } from '../schemas/queues.js';

const refusal = () => Object.assign(new Error('Cannot parse input'), { type: 'CANNOT_PARSE_INPUT_ASSERTION_FAILED' });

function batchOf(n: number, bad: Set<number>): BatchJob {
  const rows = Array.from({ length: n }, (_, i) => (bad.has(i) ? `BAD-${i}` : `ok-${i}`)).join('\n') + '\n';
  return { batchId: '00000000-0000-4000-8000-000000000001', batchSeq: 1, acceptedAtMs: 0, rowFormat: 'JSONCompactEachRow', rows, rowCount: n, hours: [0], accounts: ['a'] };
}

function engine() {
  const written: string[] = [];
  const tokens: string[] = [];
  return {
    written,
    tokens,
    insert: async (b: Pick<BatchJob, 'rows'>, settings: Record<string, unknown>) => {
      if (b.rows.includes('BAD')) throw refusal();
      tokens.push(String(settings.insert_deduplication_token));
      written.push(...b.rows.split('\n').filter(Boolean));
    },
  };
}

describe('isolating refused rows', () => {
  it('finds exactly the refused rows and writes every other row once', async () => {
    const bad = new Set([0, 3, 500, 999]);
    const e = engine();
    const result = await isolateRefusedRows(e.insert, batchOf(1000, bad), refusal());
    expect(result.refusedItems).toEqual([...bad].sort((a, b) => a - b));
    expect(result.refused).toEqual(['BAD-0', 'BAD-3', 'BAD-500', 'BAD-999']);
    expect(e.written.sort()).toEqual(Array.from({ length: 1000 }, (_, i) => i).filter((i) => !bad.has(i)).map((i) => `ok-${i}`).sort());
    expect(result.reason).toMatch(/^CANNOT_PARSE_INPUT_ASSERTION_FAILED: /);
  });

  it('makes the same inserts with the same tokens when repeated (a redelivered job)', async () => {
    const a = engine();
    const b = engine();
    await isolateRefusedRows(a.insert, batchOf(300, new Set([7, 150])), refusal());
    await isolateRefusedRows(b.insert, batchOf(300, new Set([7, 150])), refusal());
    expect(a.tokens).toEqual(b.tokens);
    expect(new Set(a.tokens).size).toBe(a.tokens.length);
  });

  it('stops at its insert bound and keeps the ranges still refused whole', async () => {
    const bad = new Set(Array.from({ length: 1000 }, (_, i) => i).filter((i) => i % 2 === 0));
    const e = engine();
    const result = await isolateRefusedRows(e.insert, batchOf(1000, bad), refusal());
    expect(result.inserts).toBe(MAX_ISOLATION_INSERTS);
    // Nothing is lost: every row is either written or refused.
    expect(e.written.length + result.refused.length).toBe(1000);
    for (const i of bad) expect(result.refused).toContain(`BAD-${i}`);
  });

  it('gives up on an outage: the job is retried, nothing is quarantined', async () => {
    let calls = 0;
    const outage = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    const insert = async () => {
      calls++;
      throw calls === 1 ? refusal() : outage;
    };
    await expect(isolateRefusedRows(insert, batchOf(10, new Set([1])), refusal())).rejects.toBe(outage);
  });
});
