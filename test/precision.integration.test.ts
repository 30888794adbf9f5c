/**
 * Values chosen so that float64 arithmetic would be wrong: ten thousand 0.1 vCPU-second
 * samples, and byte counts near 2^53 held or moved for many hours. Totals must be exact.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectedTotals, type SentSample } from './support/oracle.js';
import { startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
const end = Math.floor(Date.now() / HOUR) * HOUR;
const from = end - 48 * HOUR;
const NEAR_2_53 = 2 ** 53 - 1;

const samples: SentSample[] = [];
const base = { account_id: 'acct-precise', region: 'eu-central-1' };
for (let s = 1; s <= 10_000; s++) {
  samples.push({ ...base, id: `cpu-${s}`, resource_id: 'vm-precise', resource_type: 'vm', metric: 'cpu', value: 0.1, ts: end - 10_000_000 + s * 1000, interval_s: 1 } as SentSample);
}
// GPU-seconds in millionths: 0.000001 × 10,000 and 0.3 × 10,000, both exact.
for (let s = 1; s <= 10_000; s++) {
  samples.push({ ...base, id: `gpu-${s}`, resource_id: 'vm-precise', resource_type: 'vm', metric: 'gpu', value: s % 2 ? 0.000001 : 0.3, ts: end - 10_000_000 + s * 1000, interval_s: 1 } as SentSample);
}
for (let h = 1; h <= 48; h++) {
  const ts = from + h * HOUR;
  samples.push({ ...base, id: `sto-${h}`, resource_id: 'vol-precise', resource_type: 'volume', metric: 'storage', value: NEAR_2_53, ts, interval_s: 3600 } as SentSample);
  samples.push({ ...base, id: `out-${h}`, resource_id: 'vm-precise', resource_type: 'vm', metric: 'bandwidth_out', value: NEAR_2_53 - h, ts, interval_s: 3600 } as SentSample);
}

describe('precision', () => {
  let p: TestPipeline;
  let rows: { metric: string; base_total: string; quantity: string }[];

  beforeAll(async () => {
    p = await startTestPipeline('precision');
    for (let i = 0; i < samples.length; i += 5000) expect((await p.post(samples.slice(i, i + 5000))).status).toBe(202);
    await p.waitIdle();
    const res = await p.get(`/v1/accounts/acct-precise/usage?from=${from}&to=${end}`);
    expect(res.body.complete).toBe(true);
    rows = res.body.rows;
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('sums ten thousand 0.1 vCPU-seconds to exactly 1000, where float64 would not', () => {
    let float = 0;
    for (let i = 0; i < 10_000; i++) float += 0.1;
    expect(float).not.toBe(1000); // the trap is real
    const cpu = rows.find((r) => r.metric === 'cpu')!;
    expect(cpu.base_total).toBe('1000');
    expect(cpu.base_total).toBe(expectedTotals(samples).get('acct-precise|cpu'));
  });

  it('sums GPU-seconds exactly and bills them in GPU-hours', () => {
    let float = 0;
    for (let s = 1; s <= 10_000; s++) float += s % 2 ? 0.000001 : 0.3;
    expect(float).not.toBe(1500.005); // the trap is real for gpu too
    const gpu = rows.find((r) => r.metric === 'gpu')!;
    expect(gpu.base_total).toBe('1500.005');
    expect(gpu.base_total).toBe(expectedTotals(samples).get('acct-precise|gpu'));
    expect(gpu.quantity).toBe('0.416668055556'); // 1500.005 / 3600, half to even at 12 places
  });

  it('keeps byte-second and byte totals beyond 2^53 exact', () => {
    const oracle = expectedTotals(samples);
    const storage = rows.find((r) => r.metric === 'storage')!;
    const out = rows.find((r) => r.metric === 'bandwidth_out')!;
    expect(storage.base_total).toBe((BigInt(NEAR_2_53) * 3600n * 48n).toString());
    expect(storage.base_total).toBe(oracle.get('acct-precise|storage'));
    expect(out.base_total).toBe(oracle.get('acct-precise|bandwidth_out'));
    expect(BigInt(out.base_total)).toBeGreaterThan(BigInt(Number.MAX_SAFE_INTEGER));
  });
});
