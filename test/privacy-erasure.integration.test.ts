/**
 * Data-subject requests on real parts: access/portability export, erasure that removes
 * every billing row and queued or dead-lettered job of an account physically while
 * analytics stay untouched, re-creation billed from zero, and the audit trail of it all.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../lib/clickhouse.js';
import { toBatchJob } from '../ingest/accept.js';
import { parseSample } from '../schemas/sample.js';
import { expectedTotals, type SentSample } from './support/oracle.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';
import { claimSequence } from '../domain/ledger.js';
import { listQuarantine, quarantineIdsFor } from '../domain/quarantine.js';

const HOUR = 3_600_000;
const end = Math.floor(Date.now() / HOUR) * HOUR;
const accounts = ['acct-x', 'acct-y', 'acct-w1', 'acct-w2'];

function samplesOf(account: string): SentSample[] {
  return Array.from({ length: 24 }, (_, i) => ({
    id: `${account}-${i}`, account_id: account, resource_id: `vm-${account}`, resource_type: 'vm', region: 'eu-west-1',
    metric: i % 2 ? 'cpu' : 'bandwidth_out', value: i % 2 ? 2.5 : 1000 + i, ts: end - i * 600_000, interval_s: 600,
    attributes: { instance_type: 'm5.large' },
  })) as SentSample[];
}

describe('erasure and access requests', () => {
  let p: TestPipeline;
  let analyticsBefore: unknown[];
  let requestId: string;
  const analytics = () => queryRows(p.ch!, 'SELECT * FROM analytics.fleet_usage_hourly ORDER BY ALL');
  const rowsOf = async (account: string) => {
    const [r] = await queryRows<{ n: string }>(
      p.ch!,
      `SELECT sum(n) AS n FROM (
         SELECT count() AS n FROM billing.samples_raw WHERE account_id = {a:String} UNION ALL
         SELECT count() FROM billing.usage_hourly WHERE account_id = {a:String} UNION ALL
         SELECT count() FROM billing.adjustments_hourly WHERE account_id = {a:String})
       SETTINGS apply_deleted_mask = 0`, // counts rows merely masked as deleted, too
      { a: account },
    );
    return Number(r!.n);
  };
  const job = (account: string[], refuse?: RegExp) => {
    const samples = account.flatMap((a) => samplesOf(a).slice(0, 2)).map((s) => {
      const r = parseSample(s, Date.now());
      if (!r.ok) throw new Error('fixture invalid');
      return r.sample;
    });
    const j = toBatchJob(crypto.randomUUID(), 1_000_000 + Math.floor(Math.random() * 1000), Date.now(), samples);
    // An Enum value the table refuses, for the metrics `refuse` matches.
    return refuse ? { ...j, rows: j.rows.replace(refuse, '"not-a-metric"') } : j;
  };

  beforeAll(async () => {
    p = await startTestPipeline('erasure', { K_ANONYMITY: '2', JOB_ATTEMPTS: '1', QUARANTINE_MAX_ROWS: '1' });
    expect((await p.post(accounts.flatMap(samplesOf))).status).toBe(202);
    await p.waitIdle();
    analyticsBefore = await analytics();
    // A quarantined row of acct-x (the engine refuses it; the rest of its batch is written),
    // then a dead letter holding acct-x's rows (refused too, and the quarantine, holding
    // one row at most here, is full), and a delayed job holding acct-x's and acct-y's.
    // Numbered and marked in flight as ingest would: once written, its hours are folded.
    const refusedJob = job(['acct-x'], /"cpu"/g);
    refusedJob.batchSeq = await claimSequence(p.redis.client, p.redisKeys, refusedJob.batchId, refusedJob.hours[0]!);
    const refused = await p.queue!.add('batch', refusedJob, { attempts: 1 });
    while ((await refused.getState()) !== 'completed') await sleep(50);
    expect(await quarantineIdsFor(p.redis.client, p.redisKeys, 'acct-x')).toEqual([refused.data.batchId]);
    const poison = await p.queue!.add('batch', job(['acct-x'], /"(cpu|bandwidth_out)"/g), { attempts: 1 });
    while ((await poison.getState()) !== 'failed') await sleep(50);
    await p.queue!.add('batch', job(['acct-x', 'acct-y']), { delay: 3_600_000, jobId: 'delayed-mixed' });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('exports everything held about an account as JSON and CSV', async () => {
    const res = await fetch(`${p.url}/v1/accounts/acct-y/export`, { headers: { authorization: `Bearer ${KEYS.privacy}` } });
    expect(res.status).toBe(200);
    const doc = await res.json();
    expect(doc.account).toBe('acct-y');
    expect(doc.lifecycle.status).toBe('active');
    expect(doc.samples).toHaveLength(24);
    expect(doc.samples.map((s: { id: string }) => s.id).sort()).toEqual(samplesOf('acct-y').map((s) => s.id).sort());
    const cpu = doc.hourly_usage.filter((r: { metric: string }) => r.metric === 'cpu').reduce((a: number, r: { base_total: string }) => a + Number(r.base_total), 0);
    expect(String(cpu)).toBe(expectedTotals(samplesOf('acct-y')).get('acct-y|cpu'));
    const csv = await (await fetch(`${p.url}/v1/accounts/acct-y/export?format=csv`, { headers: { authorization: `Bearer ${KEYS.privacy}` } })).text();
    const lines = csv.trim().split('\n');
    expect(lines[0]!.startsWith('record_type,')).toBe(true);
    expect(lines.filter((l) => l.startsWith('samples,'))).toHaveLength(24);
    expect((await fetch(`${p.url}/v1/accounts/acct-y/export`, { headers: { authorization: `Bearer ${KEYS.billing}` } })).status).toBe(403);
  });

  it('erases every billing row, queued and dead-lettered job of the account, physically', async () => {
    expect(await rowsOf('acct-x')).toBeGreaterThan(0);
    const res = await fetch(`${p.url}/v1/accounts/acct-x`, { method: 'DELETE', headers: { authorization: `Bearer ${KEYS.privacy}` } });
    expect(res.status).toBe(202);
    requestId = (await res.json()).request_id;
    let status: { status: string } = { status: 'queued' };
    for (let i = 0; i < 300 && status.status !== 'done'; i++) {
      await sleep(100);
      status = (await p.get(`/v1/erasures/${requestId}`, KEYS.privacy)).body;
      expect(status.status).not.toBe('failed');
    }
    expect(status.status).toBe('done');
    expect(await rowsOf('acct-x')).toBe(0);
    const jobs = await p.queue!.getJobs(['waiting', 'delayed', 'failed', 'completed', 'active']);
    for (const j of jobs) {
      expect(j.data.accounts).not.toContain('acct-x');
      expect(j.data.rows).not.toContain('acct-x');
    }
    const mixed = await p.queue!.getJob('delayed-mixed');
    expect(mixed!.data.accounts).toEqual(['acct-y']); // the other account's rows are kept
    expect(mixed!.data.rowCount).toBe(2);
    expect(await p.redis.client.sismember(p.redisKeys.erasing, 'acct-x')).toBe(0);
    // The quarantined row of acct-x is gone too.
    expect(await quarantineIdsFor(p.redis.client, p.redisKeys, 'acct-x')).toEqual([]);
    expect(await listQuarantine(p.redis.client, p.redisKeys)).toEqual([]);
  });

  it('leaves analytics and other accounts untouched', async () => {
    expect(await analytics()).toEqual(analyticsBefore);
    const y = await p.get(`/v1/accounts/acct-y/usage?from=${end - 24 * HOUR}&to=${end}`);
    expect(Object.fromEntries(y.body.rows.map((r: { metric: string; base_total: string }) => [`acct-y|${r.metric}`, r.base_total]))).toEqual(
      Object.fromEntries(expectedTotals(samplesOf('acct-y'))),
    );
  });

  it('bills a re-created account from zero, even for the very same samples', async () => {
    const again = samplesOf('acct-x').slice(0, 10);
    expect((await p.post(again)).status).toBe(202);
    await p.waitIdle();
    const x = await p.get(`/v1/accounts/acct-x/usage?from=${end - 24 * HOUR}&to=${end}`);
    expect(Object.fromEntries(x.body.rows.map((r: { metric: string; base_total: string }) => [`acct-x|${r.metric}`, r.base_total]))).toEqual(
      Object.fromEntries(expectedTotals(again)),
    );
  });

  it('refuses samples of an account while it is being erased, keeping the others', async () => {
    await p.redis.client.sadd(p.redisKeys.erasing, 'acct-w1');
    await sleep(1100); // the ingest's view of the set refreshes every second
    const res = await p.post([...samplesOf('acct-w1').slice(0, 1), ...samplesOf('acct-w2').slice(0, 1)]);
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(1);
    expect(res.body.rejected).toEqual([{ index: 0, errors: [{ path: 'account_id', message: 'this account is being erased; send its samples again once the erasure is done' }] }]);
    await p.redis.client.srem(p.redisKeys.erasing, 'acct-w1');
  });

  it('records every privacy and billing call in the audit trail, with key ids and never keys', async () => {
    await sleep(1200); // the audit buffer flushes every second
    const res = await p.get('/v1/audit?limit=100', KEYS.privacy);
    expect(res.status).toBe(200);
    const rows = res.body.rows as { key_id: string; method: string; route: string; path: string; status: number }[];
    expect(rows).toContainEqual(expect.objectContaining({ key_id: 'privacy-test', method: 'DELETE', route: '/v1/accounts/:account', path: '/v1/accounts/acct-x', status: 202 }));
    expect(rows).toContainEqual(expect.objectContaining({ key_id: 'billing-test', route: '/v1/accounts/:account/export', status: 403 }));
    expect(rows).toContainEqual(expect.objectContaining({ key_id: 'billing-test', route: '/v1/accounts/:account/usage', status: 200 }));
    expect(JSON.stringify(rows)).not.toContain(KEYS.privacy);
    expect(rows.some((r) => r.route === '/v1/samples')).toBe(false);
    expect((await p.get('/v1/audit', KEYS.billing)).status).toBe(403);
    // Times in the one format every response uses: RFC 3339 with Z.
    for (const r of res.body.rows as { ts: string }[]) expect(r.ts).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });
});
