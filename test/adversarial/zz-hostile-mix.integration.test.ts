/**
 * The closing check of the adversarial suite: one pipeline takes legitimate traffic from
 * several accounts interleaved with every class of hostile input at once — broken bodies,
 * a producer-id flood, route abuse, identifier-like labels, formula-like ids and a poison
 * batch on the queue. Every hostile request gets a 4xx (never a 5xx), the poison holds back
 * no other account, every valid acknowledged sample is billed exactly (independent BigInt
 * oracle), and the leak scanner finds nothing in analytics.
 */
import { randomUUID } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBatchJob } from '../../ingest/accept.js';
import { claimSequence } from '../../domain/ledger.js';
import { scanAnalytics } from '../../queries/leak-scan.js';
import { parseSample, type NormalizedSample } from '../../schemas/sample.js';
import { expectedTotals, type SentSample } from '../support/oracle.js';
import { KEYS, startTestPipeline, type TestPipeline } from '../support/pipeline.js';

const HOUR = Math.floor(Date.now() / 3_600_000) * 3_600_000 - 2 * 3_600_000;
let n = 0;
function sample(account: string, over: Partial<SentSample> & Record<string, unknown> = {}): SentSample & Record<string, unknown> {
  n++;
  return { id: `mix-${n}`, account_id: account, resource_id: `vm-${account}-${n % 7}`, resource_type: 'vm', region: 'eu-west-1', metric: n % 2 ? 'cpu' : 'bandwidth_in', value: n % 2 ? 0.25 + (n % 5) : 1000 + n, ts: HOUR + 1000 + n, interval_s: 60, attributes: { instance_type: 'm5.large' }, ...over };
}

describe('hostile traffic beside legitimate traffic', () => {
  let p: TestPipeline;
  const acknowledged: SentSample[] = [];
  const hostileStatuses: { what: string; status: number }[] = [];

  const raw = async (what: string, path: string, init: RequestInit & { headers?: Record<string, string> }) => {
    const res = await fetch(`${p.url}${path}`, { ...init, headers: { authorization: `Bearer ${KEYS.producer}`, ...init.headers } });
    await res.arrayBuffer();
    hostileStatuses.push({ what, status: res.status });
    return res.status;
  };
  const legit = async (samples: SentSample[]) => {
    const res = await p.post(samples);
    expect(res.status).toBe(202);
    expect(res.body.rejected).toEqual([]);
    acknowledged.push(...samples);
  };

  beforeAll(async () => {
    p = await startTestPipeline('adv-mix', { MAX_BODY_BYTES: String(2 * 1024 * 1024), K_ANONYMITY: '3' });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('answers every hostile request with a 4xx and keeps billing every account exactly', async () => {
    const accounts = ['acct-m1', 'acct-m2', 'acct-m3', 'acct-m4', '=HYPERLINK("http://x")', '+1-555'];
    const baselineStart = Date.now();
    await legit(accounts.flatMap((a) => [sample(a), sample(a)]));
    await p.waitIdle(30_000);
    const baselineMs = Date.now() - baselineStart;

    // Broken bodies.
    const json = { 'content-type': 'application/json' };
    await raw('lone surrogate only', '/v1/samples', { method: 'POST', headers: json, body: JSON.stringify([sample('acct-m1', { id: 'x\ud800' })]) });
    await raw('inexact number only', '/v1/samples', { method: 'POST', headers: json, body: `[${JSON.stringify(sample('acct-m1')).replace(/"value":[0-9.]+/, '"value":0.10000000000000001')}]` });
    await raw('invalid UTF-8', '/v1/samples', { method: 'POST', headers: json, body: new Uint8Array([0x5b, 0x22, 0xff, 0x22, 0x5d]) });
    await raw('deep nesting', '/v1/samples', { method: 'POST', headers: json, body: '['.repeat(100_000) });
    await raw('gzip bomb', '/v1/samples', { method: 'POST', headers: { ...json, 'content-encoding': 'gzip' }, body: new Uint8Array(gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20))) });
    await raw('unknown encoding', '/v1/samples', { method: 'POST', headers: { ...json, 'content-encoding': 'zstd' }, body: '[]' });
    await raw('garbage', '/v1/samples', { method: 'POST', headers: json, body: '{"samples": [' });
    await raw('5,000 invalid items', '/v1/samples', { method: 'POST', headers: json, body: JSON.stringify(Array.from({ length: 5000 }, () => sample('acct-m1', { value: -1 }))) });
    // A producer-id flood with huge sequence numbers and invalid bodies.
    for (let i = 0; i < 50; i++) {
      await raw('producer flood', '/v1/samples', { method: 'POST', headers: { ...json, 'x-producer-id': `flood-${i}`, 'x-producer-seq': '999999999999999' }, body: '[{}]' });
    }
    // Route abuse.
    const billing = { authorization: `Bearer ${KEYS.billing}` };
    await raw('129-character account', `/v1/accounts/${'a'.repeat(129)}/usage`, { headers: billing });
    await raw('control character in account', '/v1/accounts/a%00b/usage', { headers: billing });
    await raw('impossible date', '/v1/accounts/acct-m1/usage?from=2026-13-45', { headers: billing });
    await raw('epoch zero', '/v1/accounts/acct-m1/usage?to=0', { headers: billing });
    await raw('wrong role', '/v1/accounts/acct-m1/usage', {});
    await raw('bad quarantine id', '/v1/quarantine/..%2F..%2Fetc', { headers: billing });

    // Identifier-like labels from a dozen fake accounts: valid samples, billed, never published.
    await legit(Array.from({ length: 12 }, (_, i) => sample(`fake-${i}`, { region: 'acct-m1', attributes: { instance_type: `fake-${i}`, zone: 'acct-m2' } })));

    // A poison batch put on the queue as an older release might have: one refused row.
    const poisonGood = sample('acct-m3');
    const poisonBad = sample('acct-m4');
    const normalized = [poisonGood, poisonBad].map((s) => (parseSample(s, Date.now()) as { ok: true; sample: NormalizedSample }).sample);
    const batchId = randomUUID();
    const seq = await claimSequence(p.redis.client, p.redisKeys, batchId, HOUR / 1000);
    const job = toBatchJob(batchId, seq, Date.now(), normalized);
    await p.queue!.add('batch', { ...job, rows: job.rows.replace(`"${poisonBad.id}"`, '"\\ud800"') }, { jobId: batchId });
    acknowledged.push(poisonGood);

    // Legitimate traffic after the poison: its freshness must not notice.
    const after = accounts.slice(0, 3).map((a) => sample(a));
    const posted = Date.now();
    await legit(after);
    await p.waitIdle(30_000);
    console.log(`[hostile-mix] complete ${Date.now() - posted} ms after a 202 with the poison batch just queued; ${baselineMs} ms for the first batch with no poison`);

    expect(hostileStatuses.filter((h) => h.status < 400 || h.status >= 500)).toEqual([]);

    const from = new Date(HOUR).toISOString();
    const to = new Date(HOUR + 3_600_000).toISOString();
    const billed = new Map<string, string>();
    for (const account of new Set(acknowledged.map((s) => s.account_id))) {
      const u = await p.get(`/v1/accounts/${encodeURIComponent(account)}/usage?from=${from}&to=${to}`);
      expect(u.status, account).toBe(200);
      expect(u.body.complete, account).toBe(account !== 'acct-m4');
      for (const r of u.body.rows) billed.set(`${account}|${r.metric}`, r.base_total);
    }
    expect(billed).toEqual(expectedTotals(acknowledged));
    const m4 = await p.get(`/v1/accounts/acct-m4/usage?from=${from}&to=${to}`);
    expect(m4.body.incomplete_reasons).toEqual([expect.objectContaining({ code: 'quarantined', quarantine_ids: [batchId] })]);
  });

  it('leaves nothing for the leak scanner in analytics', async () => {
    const report = await scanAnalytics(p.ch!, { k: 3 });
    expect(report.sources).toBeGreaterThan(0);
    expect(report.hits).toEqual([]);
  });
});
