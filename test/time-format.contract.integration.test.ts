/**
 * One time format in every response (issue 17): every billing and operations route, the
 * exports (JSON and NDJSON) and the CLI's JSON output are walked, and any string holding a
 * date and time that is not RFC 3339 with `Z` fails the test with its path. The engine
 * prints DateTime as `2026-11-30 01:33:16.370` (no zone); nothing of that shape may leak.
 *
 * The data is chosen so the time fields exist: a closed period (closed_at), an adjustment,
 * a terminated account (lifecycle times), raw samples (ts, accepted_at), a quarantine
 * entry and a dead letter.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { toBatchJob } from '../ingest/accept.js';
import { addToQuarantine } from '../domain/quarantine.js';
import { parseSample } from '../schemas/sample.js';
import { runCoverageCommand } from '../cli/coverage.js';
import { runDeadLettersCommand } from '../cli/dead-letters.js';
import { runExportCommand } from '../cli/export.js';
import { runQuarantineCommand } from '../cli/quarantine.js';
import type { CliIo } from '../cli/query.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';
import { ndjsonTimeViolations, timeViolations } from './support/time-contract.js';

const HOUR = 3_600_000;
const now = new Date();
const early = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 2, 1);
const earlyLabel = new Date(early).toISOString().slice(0, 7);
const thisHour = Math.floor(Date.now() / HOUR) * HOUR;

const sample = (account: string, id: string, ts: number, extra: Record<string, unknown> = {}) => ({
  id, account_id: account, resource_id: `vm-${account}`, resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 1.5, ts, interval_s: 60, ...extra,
});

describe('the time checker', () => {
  it('flags zone-less and offset times wherever they sit in a document, and passes RFC 3339 Z, days and months', () => {
    const doc = {
      ok: ['2026-11-30T01:33:16.370Z', '2026-11-30T01:33:16Z', '2026-11-30', '2026-11', 'vm-2026-11-30', 12_345],
      engine: '2026-11-30 01:33:16.370',
      offset: '2026-11-30T01:33:16+01:00',
      nested: [{ message: 'closed at 2026-11-30 01:33 UTC, see log' }],
    };
    expect(timeViolations(doc).map((v) => v.path)).toEqual(['$.engine', '$.offset', '$.nested[0].message']);
    expect(ndjsonTimeViolations('{"a":"2026-11-30T00:00:00.000Z"}\n{"b":"2026-11-30 00:00:00"}\n')).toEqual([{ path: 'line 2.b', value: '2026-11-30 00:00:00' }]);
  });
});

describe('every billing and operations response speaks RFC 3339 with Z', () => {
  let p: TestPipeline;
  const responses: Array<{ name: string; body: unknown; ndjson?: boolean }> = [];
  let quarantineId = '';
  let deadLetterId = '';

  const call = async (method: string, path: string, key: string = KEYS.billing, body?: unknown) => {
    const res = await fetch(`${p.url}${path}`, {
      method,
      headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    const ndjson = res.headers.get('content-type')?.includes('ndjson') ?? false;
    responses.push({ name: `${method} ${path} (${res.status})`, body: ndjson ? text : JSON.parse(text), ndjson });
    return { status: res.status, text, json: () => JSON.parse(text) };
  };
  const capture = async (run: (io: CliIo) => Promise<number>, name: string, ndjson = false) => {
    const out: string[] = [];
    const io = { stdout: { write: (t: string) => out.push(t) }, stderr: { write: () => true } } as unknown as CliIo;
    const original = console.log;
    console.log = (t: string) => out.push(`${t}\n`);
    try {
      expect(await run(io), name).toBe(0);
    } finally {
      console.log = original;
    }
    const text = out.join('');
    responses.push({ name, body: ndjson ? text : JSON.parse(text), ndjson });
    return text;
  };

  beforeAll(async () => {
    p = await startTestPipeline('times', { PERIOD_CLOSE_INTERVAL_MS: '100', PERIOD_GRACE_HOURS: '1', RAW_RETENTION_DAYS: '400' });
    const onTime = Array.from({ length: 6 }, (_, i) => sample('acct-t', `t-${i}`, early + (i + 1) * HOUR));
    expect((await call('POST', '/v1/samples', KEYS.producer, [...onTime, sample('acct-t', 'h-1', thisHour + 60_000, { metric: 'memory', value: 1024, estimated: 'held' })])).status).toBe(202);
    expect((await call('POST', '/v1/samples', KEYS.producer, [sample('acct-term', 'x-1', thisHour + 60_000)])).status).toBe(202);
    await p.waitIdle();
    for (let i = 0; ; i++) {
      const u = (await p.get(`/v1/accounts/acct-t/usage?from=${early}&to=${early + 24 * HOUR}`)).body;
      if (u.periods[0]?.status === 'closed') break;
      if (i > 300) throw new Error(`the period did not close: ${JSON.stringify(u.periods)}`);
      await sleep(100);
    }
    // A late sample for the closed period: an adjustment, dated.
    expect((await call('POST', '/v1/samples', KEYS.producer, [sample('acct-t', 'late-1', early + 30 * 60_000 + 7 * HOUR)])).status).toBe(202);
    await p.waitIdle();
    expect((await call('POST', '/v1/accounts/acct-term/terminate', KEYS.billing)).status).toBe(200);

    // A quarantine entry, as the batch writer would leave one.
    const parsed = parseSample(sample('acct-q', 'q-1', thisHour + 120_000), Date.now());
    if (!parsed.ok) throw new Error('fixture sample invalid');
    quarantineId = crypto.randomUUID();
    const job = toBatchJob(quarantineId, 999_999, Date.now(), [parsed.sample]);
    await addToQuarantine(p.redis.client, p.redisKeys, {
      id: quarantineId, batchSeq: job.batchSeq, acceptedAtMs: job.acceptedAtMs, firstSeenMs: Date.now(), reason: 'TYPE_MISMATCH: test',
      rowFormat: 'JSONCompactEachRow', rowCount: 1, rows: job.rows, accounts: { 'acct-q': job.hours },
    }, 1000);
    // A dead letter: a payload that can never be valid goes straight to the failed set.
    deadLetterId = crypto.randomUUID();
    await p.queue!.add('batch', { not: 'a batch' } as never, { jobId: deadLetterId });
    for (let i = 0; (await p.queue!.getFailedCount()) === 0; i++) {
      if (i > 200) throw new Error('the poison job was not dead-lettered');
      await sleep(50);
    }
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  it('holds for the HTTP routes', async () => {
    const usage = (await call('GET', `/v1/accounts/acct-t/usage?from=${early}&to=${thisHour + HOUR}&granularity=day&group_by=resource_id,region`)).json();
    // The fields this test exists for are really there.
    expect(usage.periods[0]).toMatchObject({ status: 'closed', closed_at: expect.any(String) });
    expect(usage.adjustments.length).toBeGreaterThan(0);
    await call('GET', `/v1/accounts/acct-t/usage?from=${early}&to=${thisHour + HOUR}&granularity=hour`);
    await call('GET', `/v1/accounts/acct-t/usage?from=2026-13-01`); // an error message naming bounds
    await call('GET', `/v1/accounts/acct-t/coverage?period=${earlyLabel}`);
    await call('GET', `/v1/accounts/acct-t/coverage`);
    await call('GET', '/v1/producers');
    const closedExport = await call('GET', `/v1/usage?period=${earlyLabel}`);
    expect(closedExport.status).toBe(200);
    await call('GET', `/v1/usage?from=${early}&to=${thisHour + HOUR}&group_by=resource_id,region`);
    const terminated = (await call('GET', '/v1/accounts/acct-term/export', KEYS.privacy)).json();
    expect(terminated.lifecycle.terminated_at).toEqual(expect.any(String));
    const exported = (await call('GET', '/v1/accounts/acct-t/export', KEYS.privacy)).json();
    expect(exported.samples.length).toBeGreaterThan(0);
    expect(exported.hourly_usage.length).toBeGreaterThan(0);
    const list = (await call('GET', '/v1/quarantine')).json();
    expect(list.entries).toHaveLength(1);
    await call('GET', `/v1/quarantine/${quarantineId}`);
    await call('POST', `/v1/quarantine/${quarantineId}/replay`);
    await call('DELETE', `/v1/quarantine/${crypto.randomUUID()}`);
    await call('GET', '/healthz', '');
    await call('GET', '/readyz', '');

    for (const r of responses) {
      const violations = r.ndjson ? ndjsonTimeViolations(r.body as string) : timeViolations(r.body);
      expect(violations, r.name).toEqual([]);
    }
  });

  it('holds for the command line\'s JSON output', async () => {
    const flags = ['--key-prefix', p.config.KEY_PREFIX, '--redis-url', p.config.REDIS_URL ?? 'redis://127.0.0.1:6379'];
    await capture((io) => runCoverageCommand(['--account', 'acct-t', '--period', earlyLabel, '--format', 'json', '--url', p.url, '--key', KEYS.billing], io), 'coverage --format json');
    await capture((io) => runExportCommand(['--period', earlyLabel, '--out', '-', '--quiet', '--url', p.url, '--key', KEYS.billing], io), 'export --period (NDJSON)', true);
    const letters = JSON.parse(await capture(() => runDeadLettersCommand(['list', '--json', ...flags]), 'dead-letters list --json'));
    expect(letters.dead_letters.map((l: { id: string }) => l.id)).toContain(deadLetterId);
    await capture(() => runDeadLettersCommand(['show', deadLetterId, '--json', ...flags]), 'dead-letters show --json');
    await capture(() => runQuarantineCommand(['list', '--json', ...flags]), 'quarantine list --json');
    const cli = responses.filter((r) => !r.name.includes('/'));
    expect(cli).toHaveLength(5);
    for (const r of cli) {
      const violations = r.ndjson ? ndjsonTimeViolations(r.body as string) : timeViolations(r.body);
      expect(violations, r.name).toEqual([]);
    }
  });
});
