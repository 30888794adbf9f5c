/**
 * Billing periods on real parts: past months close after their grace; a closed period's
 * totals and export never change; a late sample is billed as a dated adjustment in the
 * first open period, tied to the period it belongs to; a late duplicate bills nothing.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportDigest } from '../domain/period-export.js';
import { expectedTotals, type SentSample } from './support/oracle.js';
import { startTestPipeline, type TestPipeline } from './support/pipeline.js';

const GRACE_H = 48;
const monthStart = (y: number, m: number) => Date.UTC(y, m, 1);
const now = new Date();
const thisMonth = monthStart(now.getUTCFullYear(), now.getUTCMonth());
const addMonths = (ms: number, n: number) => monthStart(new Date(ms).getUTCFullYear(), new Date(ms).getUTCMonth() + n);
const label = (ms: number) => new Date(ms).toISOString().slice(0, 7);

// Two finished months of data, well past their grace.
const early = addMonths(thisMonth, -3);
const later = addMonths(thisMonth, -2);
// The first period still open for adjustments: after the last month whose grace has passed.
let firstOpen = early;
while (addMonths(firstOpen, 1) + GRACE_H * 3_600_000 <= Date.now()) firstOpen = addMonths(firstOpen, 1);

function samples(account: string, periodStart: number, tag: string, count: number, value: number): SentSample[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `${tag}-${account}-${i}`, account_id: account, resource_id: `vm-${account}`, resource_type: 'vm', region: 'eu-west-1',
    metric: 'cpu', value, ts: periodStart + (i + 1) * 3_600_000, interval_s: 3600,
  })) as SentSample[];
}

describe('billing periods', () => {
  let p: TestPipeline;
  const onTime = [...samples('acct-pa', early, 'a', 20, 1.5), ...samples('acct-pb', early, 'b', 10, 2.25), ...samples('acct-pa', later, 'c', 5, 4)];
  let before: { usage: any; digest: string };

  const usage = async (account: string, from: number, to: number) => (await p.get(`/v1/accounts/${account}/usage?from=${from}&to=${to}`)).body;

  beforeAll(async () => {
    // Months back from now: the raw retention must reach them, or they could not be billed.
    p = await startTestPipeline('periods', { PERIOD_CLOSE_INTERVAL_MS: '100', PERIOD_GRACE_HOURS: String(GRACE_H), RAW_RETENTION_DAYS: '400' });
    expect((await p.post(onTime)).status).toBe(202);
    await p.waitIdle();
    for (let i = 0; ; i++) {
      const u = await usage('acct-pa', early, addMonths(later, 1));
      if (u.periods.every((x: { status: string }) => x.status === 'closed')) break;
      if (i > 200) throw new Error(`periods did not close: ${JSON.stringify(u.periods)}`);
      await sleep(100);
    }
    before = { usage: await usage('acct-pa', early, addMonths(early, 1)), digest: await exportDigest(p.ch!, label(early)) };
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('closes finished periods with a fingerprint of their export, and leaves the current one open', async () => {
    const u = await usage('acct-pa', early, addMonths(thisMonth, 1));
    const statuses = Object.fromEntries(u.periods.map((x: { period: string; status: string }) => [x.period, x.status]));
    expect(statuses[label(early)]).toBe('closed');
    expect(statuses[label(later)]).toBe('closed');
    expect(statuses[label(thisMonth)]).toBe('open');
    const early_ = u.periods.find((x: { period: string }) => x.period === label(early));
    expect(early_.export_sha256).toBe(before.digest);
    expect(before.usage.rows[0].base_total).toBe(expectedTotals(onTime.filter((s) => s.account_id === 'acct-pa' && (s.ts as number) < later)).get('acct-pa|cpu'));
  });

  it('bills late samples as dated adjustments in the first open period and never changes the closed one', async () => {
    const late = samples('acct-pa', early, 'late', 3, 0.1).map((s, i) => ({ ...s, ts: (s.ts as number) + 1800_000 + i }));
    const lateDuplicate = { ...onTime[0]!, id: 'late-dup-of-a-0', value: 99 }; // same natural key: the first stands
    const res = await p.post([...late, lateDuplicate, onTime[1]!]);
    expect(res.status).toBe(202);
    await p.waitIdle();

    const after = await usage('acct-pa', early, addMonths(early, 1));
    expect(after.rows).toEqual(before.usage.rows);
    expect(after.periods[0].status).toBe('closed');
    expect(await exportDigest(p.ch!, label(early))).toBe(before.digest); // byte-identical export

    const open = await usage('acct-pa', firstOpen, addMonths(firstOpen, 1));
    expect(open.adjustments).toEqual([
      {
        billed_period: label(firstOpen),
        original_period: label(early),
        accepted_date: new Date().toISOString().slice(0, 10),
        metric: 'cpu',
        ...{ base_total: expectedTotals(late).get('acct-pa|cpu') },
        base_unit: 'vCPU-second',
        quantity: expect.any(String),
        unit: 'vCPU-hour',
      },
    ]);
    expect(open.adjustments[0].base_total).toBe('0.3');
  });
});
