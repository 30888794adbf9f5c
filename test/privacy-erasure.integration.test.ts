/**
 * Data-subject requests on real parts: access/portability export, erasure that removes
 * every billing row and queued or dead-lettered job of an account physically while
 * analytics stay untouched, a status that names the account and what went, samples of the
 * erased account refused until the privacy team reinstates it (then billed from zero), the
 * scanner recognizing the erased ids by fingerprint, and the audit trail of it all.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queryRows } from '../lib/clickhouse.js';
import { toBatchJob } from '../ingest/accept.js';
import { parseSample } from '../schemas/sample.js';
import { expectedTotals, type SentSample } from './support/oracle.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';
import { claimSequence } from '../domain/ledger.js';
import { getQuarantine, listQuarantine, quarantineIdsFor } from '../domain/quarantine.js';
import { decodeStoredRow } from '../schemas/raw-row.js';
import { ErasedFingerprints } from '../domain/erased-identifiers.js';
import { runPrivacyScanCommand } from '../cli/privacy-scan.js';
import { scanFile } from '../queries/leak-scan.js';

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
  let exportJsonFile: string;
  let exportCsvFile: string;
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

  it('erases every billing row, queued and dead-lettered job of the account, physically, and says what went', async () => {
    expect(await rowsOf('acct-x')).toBeGreaterThan(0);
    // The customer's own export, kept as a file before the erasure (what the scanner is given later).
    exportJsonFile = path.join(p.dataDir, 'acct-x-export.json');
    exportCsvFile = path.join(p.dataDir, 'acct-x-export.csv');
    const exported = async (format: string) =>
      (await fetch(`${p.url}/v1/accounts/acct-x/export?format=${format}`, { headers: { authorization: `Bearer ${KEYS.privacy}` } })).text();
    writeFileSync(exportJsonFile, await exported('json'));
    writeFileSync(exportCsvFile, await exported('csv'));
    // What is there to remove, counted independently of the worker: rows per table, and the
    // account's rows in jobs and the quarantine.
    await p.waitIdle();
    const tableRows = async (table: string) =>
      Number((await queryRows<{ n: string }>(p.ch!, `SELECT count() AS n FROM ${table} WHERE account_id = 'acct-x'`))[0]!.n);
    const before = {
      raw_samples: await tableRows('billing.samples_raw'),
      hourly_usage: await tableRows('billing.usage_hourly'),
      adjustments: await tableRows('billing.adjustments_hourly'),
      lifecycle: await tableRows('billing.accounts'),
    };
    const jobRows = (j: { data: { rows: string; rowFormat?: 'JSONEachRow' | 'JSONCompactEachRow' } }) =>
      j.data.rows.split('\n').filter(Boolean).filter((l) => decodeStoredRow(l, j.data.rowFormat).account_id === 'acct-x').length;
    const queued = (await p.queue!.getJobs(['waiting', 'delayed', 'completed'])).filter((j) => j.data.accounts.includes('acct-x'));
    const dead = (await p.queue!.getJobs(['failed'])).filter((j) => j.data.accounts.includes('acct-x'));
    let quarantined = 0;
    for (const id of await quarantineIdsFor(p.redis.client, p.redisKeys, 'acct-x')) {
      const entry = (await getQuarantine(p.redis.client, p.redisKeys, id))!;
      quarantined += entry.rows.split('\n').filter(Boolean).filter((l) => decodeStoredRow(l, entry.rowFormat).account_id === 'acct-x').length;
    }
    expect(before.raw_samples).toBeGreaterThan(0);
    expect(dead.length).toBeGreaterThan(0);
    expect(quarantined).toBeGreaterThan(0);

    const res = await fetch(`${p.url}/v1/accounts/acct-x`, { method: 'DELETE', headers: { authorization: `Bearer ${KEYS.privacy}` } });
    expect(res.status).toBe(202);
    requestId = (await res.json()).request_id;
    let status: any = { status: 'queued' };
    for (let i = 0; i < 300 && status.status !== 'done'; i++) {
      await sleep(100);
      status = (await p.get(`/v1/erasures/${requestId}`, KEYS.privacy)).body;
      expect(status.status).not.toBe('failed');
    }
    expect(status.status).toBe('done');
    expect(await rowsOf('acct-x')).toBe(0);

    // The status names the account and what was removed, table by table.
    expect(status).toMatchObject({ request_id: requestId, account: 'acct-x', reason: 'request', passes: 1, error: null });
    expect(status.removed).toEqual({
      ...before,
      queued_jobs: queued.length,
      queued_rows: queued.reduce((a, j) => a + jobRows(j), 0),
      dead_letter_jobs: dead.length,
      dead_letter_rows: dead.reduce((a, j) => a + jobRows(j), 0),
      quarantined_rows: quarantined,
    });
    // The periods its usage fell in, each with its state; together they hold every hourly row.
    expect(status.periods.length).toBeGreaterThan(0);
    expect(status.periods.reduce((a: number, q: { usage_rows: number }) => a + q.usage_rows, 0)).toBe(before.hourly_usage);
    for (const q of status.periods) expect(q).toMatchObject({ period: expect.stringMatching(/^\d{4}-\d{2}$/), status: 'open' });
    // When each step finished, in order, as RFC 3339 with Z.
    const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
    for (const t of [status.requested_at, status.started_at, status.finished_at]) expect(t).toMatch(iso);
    const times = status.steps.map((s: { finished_at: string }) => s.finished_at);
    for (const t of times) expect(t).toMatch(iso);
    expect([...times].sort()).toEqual(times);
    expect(status.steps.map((s: { step: string }) => s.step)).toEqual([
      'samples_refused', 'identifiers_fingerprinted', 'queue_scrubbed', 'sources_deleted', 'aggregates_deleted', 'verified', 'account_listed_as_erased',
    ]);
    // One resource id (vm-acct-x) was fingerprinted; the account is on the erased list.
    expect(status.fingerprints).toMatchObject({ account_listed: true, identifiers: 1, identifiers_omitted: 0, dropped_by_bound: 0, expires_at: expect.stringMatching(iso) });
    // Kept as fingerprints, never as ids: nothing under the prefix holds the id except this status.
    for (const key of await p.redis.client.keys(`${p.config.KEY_PREFIX}:erased:*`)) {
      const type = await p.redis.client.type(key);
      const dump = type === 'zset' ? (await p.redis.client.zrange(key, '0', '-1')).join(' ') : String(await p.redis.client.get(key));
      expect(dump).not.toContain('acct-x');
      expect(dump).not.toContain('vm-acct-x');
    }
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

  it('recognizes the erased ids in the customer\'s own export by fingerprint, and says what it compared against', async () => {
    const erased = await ErasedFingerprints.open(p.redis.client, p.redisKeys);
    expect(erased.counts).toMatchObject({ keyed: true, accounts: 1, identifiers: 1, dropped: 0 });
    // The JSON export names the account and its resource; the CSV one only the resource.
    for (const [file, ids] of [[exportJsonFile, ['acct-x', 'vm-acct-x']], [exportCsvFile, ['vm-acct-x']]] as const) {
      // Billing no longer knows acct-x: without the list the file would pass as clean.
      expect((await scanFile(p.ch!, file)).hits.filter((h) => /acct-x/.test(h.value))).toEqual([]);
      const report = await scanFile(p.ch!, file, { erased });
      expect([...new Set(report.hits.map((h) => h.value))].sort()).toEqual(ids);
      expect(report.hits.find((h) => h.value === 'vm-acct-x')!.reason).toContain('an identifier an erasure removed (resource id) (fingerprint match)');
      if (file === exportJsonFile) {
        expect(report.hits.find((h) => h.source === `${file}:samples[].resource_id`)?.value).toBe('vm-acct-x'); // nested rows are read too
        expect(report.hits.find((h) => h.value === 'acct-x')!.reason).toContain('the id of an erased account (fingerprint match)');
      }
      expect(report.scanned).toEqual([expect.objectContaining({ source: file, bytes: expect.any(Number), columns: expect.any(Number) })]);
      expect(report.scanned[0]!.rows).toBeGreaterThanOrEqual(24);
    }
    // The command prints the hits, what it read and what it compared against.
    const printed: string[] = [];
    const log = console.log;
    console.log = (s: string) => printed.push(s);
    try {
      expect(await runPrivacyScanCommand(['--data-dir', p.dataDir, '--key-prefix', p.config.KEY_PREFIX, exportJsonFile])).toBe(1);
    } finally {
      console.log = log;
    }
    const out = printed.join('\n');
    expect(out).toMatch(/^LEAK .*acct-x-export\.json:.*"acct-x" holds "acct-x", the id of an erased account/m);
    expect(out).toMatch(/analytics\.fleet_usage_hourly_versions: [\d,]+ rows, /);
    expect(out).toContain('1 erased account(s) and 1 erased identifier(s) by fingerprint');
    expect(out).toMatch(/compared against: \d+ live account ids/);
  });

  it('refuses samples of the erased account with account_erased instead of re-creating it, keeping the others', async () => {
    const onlyErased = await p.post(samplesOf('acct-x').slice(0, 2));
    expect(onlyErased.status).toBe(400);
    expect(onlyErased.body.error.code).toBe('no_valid_samples');
    expect(onlyErased.body.error.details.rejected).toEqual([0, 1].map((index) => ({ index, code: 'account_erased', errors: [{ path: 'account_id', message: expect.stringContaining('this account was erased') }] })));
    const mixed = await p.post([samplesOf('acct-y')[0], samplesOf('acct-x')[3]]);
    expect(mixed.status).toBe(202);
    expect(mixed.body).toMatchObject({ accepted: 1, rejected_count: 1, rejected: [{ index: 1, code: 'account_erased' }] });
    await p.waitIdle();
    expect(await rowsOf('acct-x')).toBe(0);
  });

  it('reinstates an erased account only through the privacy key, then bills it from zero, even for the very same samples', async () => {
    const reinstate = (key: string, account = 'acct-x') =>
      fetch(`${p.url}/v1/accounts/${account}/reinstate`, { method: 'POST', headers: { authorization: `Bearer ${key}` } });
    expect((await reinstate(KEYS.billing)).status).toBe(403);
    expect((await reinstate(KEYS.producer)).status).toBe(403);
    const never = await reinstate(KEYS.privacy, 'acct-never-erased');
    expect(never.status).toBe(404);
    expect((await never.json()).error.code).toBe('not_erased');
    const ok = await reinstate(KEYS.privacy);
    expect(ok.status).toBe(200);
    expect(await ok.json()).toMatchObject({ account: 'acct-x', reinstated: true });
    expect((await reinstate(KEYS.privacy)).status).toBe(404); // once
    await sleep(50);
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
    expect(res.body.rejected).toEqual([{ index: 0, code: 'account_being_erased', errors: [{ path: 'account_id', message: 'this account is being erased; its samples are refused' }] }]);
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
