/**
 * Completeness for billing: per-account coverage of the period and open gap hours, and
 * per-producer sequence gaps that close when the missing batch finally arrives.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';
import { runCoverageCommand } from '../cli/coverage.js';
import type { CliIo } from '../cli/query.js';

const HOUR = 3_600_000;
const now = new Date();
const period = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1); // last month
const label = new Date(period).toISOString().slice(0, 7);
const t0 = period + 24 * HOUR;

/** 5-minute cpu samples for hours [0, 6) of t0, except the skipped windows. */
function series(resource: string, skip: (minute: number) => boolean) {
  const out = [];
  for (let m = 5; m <= 360; m += 5) {
    if (skip(m)) continue;
    out.push({ id: `${resource}-${m}`, account_id: 'acct-cov', resource_id: resource, resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 1, ts: t0 + m * 60_000, interval_s: 300 });
  }
  return out;
}

describe('coverage and producer gaps', () => {
  let p: TestPipeline;
  const post = (body: unknown, headers: Record<string, string>) =>
    fetch(`${p.url}/v1/samples`, { method: 'POST', headers: { authorization: `Bearer ${KEYS.producer}`, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });

  beforeAll(async () => {
    p = await startTestPipeline('coverage');
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('reports covered against expected seconds and the hours with gaps', async () => {
    const full = series('vm-full', () => false);
    // vm-gappy misses all of hour 2 and the second half of hour 4 (windows ending in (270, 300]).
    const gappy = series('vm-gappy', (m) => (m > 120 && m <= 180) || (m > 270 && m <= 300));
    expect((await p.post([...full, ...gappy])).status).toBe(202);
    await p.waitIdle();
    const res = await p.get(`/v1/accounts/acct-cov/coverage?period=${label}`);
    expect(res.status).toBe(200);
    // Independent arithmetic: two spans of 6 h; vm-gappy lacks 1 h + 30 min of them.
    const expected = 2 * 6 * 3600;
    const covered = expected - 3600 - 1800;
    // Pushed samples carry no provenance mark: every covered second was measured.
    expect(res.body.metrics).toEqual([
      {
        metric: 'cpu', series: 2, covered_s: String(covered), measured_s: String(covered), held_s: '0', expected_s: String(expected),
        coverage: (covered / expected).toFixed(4), coverage_measured: (covered / expected).toFixed(4), gap_hours: 2,
      },
    ]);
    expect((await p.get(`/v1/accounts/acct-cov/coverage?period=13-2026`)).status).toBe(400);
  });

  it('counts seconds a producer marked held apart from measured ones, and bills them the same', async () => {
    // One resource, hour 0 of t0: 5-minute memory windows; the windows ending at minutes
    // 20 and 25 were held by the producer across its missed readings, the rest measured.
    const held = new Set([20, 25]);
    const samples = [];
    for (let m = 5; m <= 60; m += 5) {
      samples.push({
        id: `mem-${m}`, account_id: 'acct-held', resource_id: 'vm-h', resource_type: 'vm', region: 'eu-west-1', metric: 'memory',
        value: 1024, ts: t0 + m * 60_000, interval_s: 300, ...(held.has(m) ? { estimated: 'held' } : {}),
      });
    }
    // A copy of a measured window marked held later is a duplicate: the first copy counts.
    samples.push({ ...samples[0]!, id: 'mem-5-again', estimated: 'held' });
    expect((await p.post(samples)).status).toBe(202);
    await p.waitIdle();
    const cov = await p.get(`/v1/accounts/acct-held/coverage?period=${label}`);
    const heldS = held.size * 300;
    expect(cov.body.metrics).toEqual([
      {
        metric: 'memory', series: 1, covered_s: '3600', measured_s: String(3600 - heldS), held_s: String(heldS), expected_s: '3600',
        coverage: '1.0000', coverage_measured: ((3600 - heldS) / 3600).toFixed(4), gap_hours: 0,
      },
    ]);
    // The command line says the same, through the API.
    const out: string[] = [];
    const io = { stdout: { write: (t: string) => out.push(t) }, stderr: { write: (t: string) => out.push(t) } } as unknown as CliIo;
    expect(await runCoverageCommand(['--account', 'acct-held', '--period', label, '--format', 'json', '--url', p.url, '--key', KEYS.billing], io)).toBe(0);
    expect(JSON.parse(out.join(''))).toEqual({ account: 'acct-held', period: label, metrics: cov.body.metrics });
    // The bill counts held seconds like measured ones: 12 windows × 300 s × 1024 bytes.
    const usage = await p.get(`/v1/accounts/acct-held/usage?from=${t0}&to=${t0 + HOUR}`);
    expect(usage.body.rows).toEqual([expect.objectContaining({ metric: 'memory', base_total: String(12 * 300 * 1024) })]);
  });

  it('tracks each producer\'s missing batch numbers until they arrive', async () => {
    const one = (i: number) => [{ ...series('vm-p', () => false)[i]!, account_id: 'acct-prod', id: `p-${i}` }];
    for (const seq of [0, 1, 3, 6]) expect((await post(one(seq), { 'x-producer-id': 'agent-7', 'x-producer-seq': String(seq) })).status).toBe(202);
    let report = (await p.get('/v1/producers')).body.producers;
    expect(report).toEqual([{ producer: 'agent-7', last_seq: 6, missing: 3, first_missing: [2, 4, 5] }]);
    expect((await post(one(4), { 'x-producer-id': 'agent-7', 'x-producer-seq': '4' })).status).toBe(202); // a late retry
    report = (await p.get('/v1/producers')).body.producers;
    expect(report).toEqual([{ producer: 'agent-7', last_seq: 6, missing: 2, first_missing: [2, 5] }]);
    const bad = await post(one(8), { 'x-producer-id': 'agent 7!', 'x-producer-seq': '8' });
    expect(bad.status).toBe(400);
    expect((await bad.json()).error.code).toBe('invalid_producer_headers');
    expect((await p.get('/v1/producers', KEYS.producer)).status).toBe(403);
  });
});
