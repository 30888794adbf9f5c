/**
 * Retention matches the policy: raw samples 90 days and the audit trail 24 months as TTLs
 * (back-dated rows disappear once the TTL is applied), no TTL on anonymized analytics, and
 * a terminated account's usage erased when its retention after termination ends.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { insertNdjson, queryRows } from '../lib/clickhouse.js';
import { applyRetention } from '../lib/retention.js';
import { addMonthsUtc, terminateAccount } from '../domain/accounts.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;

describe('retention', () => {
  let p: TestPipeline;
  const count = async (sql: string) => Number((await queryRows<{ n: string }>(p.ch!, sql))[0]!.n);
  const createQuery = async (table: string) =>
    (await queryRows<{ q: string }>(p.ch!, 'SELECT create_table_query AS q FROM system.tables WHERE concat(database, \'.\', name) = {t:String}', { t: table }))[0]!.q;

  beforeAll(async () => {
    p = await startTestPipeline('retention', { RETENTION_INTERVAL_MS: '200', ACCOUNT_RETENTION_MONTHS: '0' });
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('sets the policy TTLs, and none on anonymized analytics or per-account aggregates', async () => {
    expect(await createQuery('billing.samples_raw')).toContain('TTL usage_hour + toIntervalDay(90)');
    expect(await createQuery('audit.api_calls')).toContain('TTL toDateTime(ts) + toIntervalMonth(24)');
    for (const t of ['analytics.fleet_usage_hourly_versions', 'analytics.suppression_hourly', 'billing.usage_hourly']) {
      expect(await createQuery(t)).not.toContain('TTL');
    }
  });

  it('drops raw samples older than the retention once the TTL is applied, and keeps younger ones', async () => {
    const row = (id: string, ageDays: number) => {
      const ts = Math.floor((Date.now() - ageDays * DAY) / HOUR) * HOUR;
      return JSON.stringify({
        batch_id: crypto.randomUUID(), batch_seq: 1, item: 0, id, account_id: 'acct-old', resource_id: 'vm-old', resource_type: 'vm',
        region: 'eu-west-1', metric: 'cpu', ts, usage_hour: ts / 1000 - 3600, interval_s: 60, value: '1', attributes: {}, accepted_at: ts,
      });
    };
    await insertNdjson(p.ch!, 'billing.samples_raw', [row('d100', 100), row('d80', 80), row('d10', 10)].join('\n') + '\n');
    await p.ch!.command({ query: 'OPTIMIZE TABLE billing.samples_raw FINAL' });
    const ids = async () => (await queryRows<{ id: string }>(p.ch!, "SELECT id FROM billing.samples_raw WHERE account_id = 'acct-old' ORDER BY id")).map((r) => r.id);
    expect(await ids()).toEqual(['d10', 'd80']);

    // A shorter retention is a setting: applied at start-up, it rewrites the TTL.
    expect(await applyRetention(p.ch!, 30, 24)).toEqual(['billing.samples_raw']);
    await p.ch!.command({ query: 'OPTIMIZE TABLE billing.samples_raw FINAL' });
    expect(await ids()).toEqual(['d10']);
    expect(await applyRetention(p.ch!, 90, 24)).toEqual(['billing.samples_raw']);
    expect(await applyRetention(p.ch!, 90, 24)).toEqual([]); // unchanged settings change nothing

    // An hour whose raw rows the TTL may already have thinned is never recomputed (it would
    // shrink a bill): the rollup drops it from the dirty set without writing anything.
    const oldHour = Math.floor((Date.now() - 100 * DAY) / HOUR) * 3600;
    await p.redis.client.hincrby(p.redisKeys.dirtyHours, String(oldHour), 1);
    await p.waitIdle();
    expect(await count(`SELECT count() AS n FROM billing.usage_hourly WHERE hour = ${oldHour}`)).toBe(0);
  });

  it('keeps the audit trail 24 months', async () => {
    const audit = (ageMonths: number) => ({
      ts: addMonthsUtc(Date.now(), -ageMonths), key_id: `k-${ageMonths}`, role: 'billing', method: 'GET', route: '/v1/usage', path: '/v1/usage', status: 200, duration_ms: 1, request_id: 'r',
    });
    await p.ch!.insert({ table: 'audit.api_calls', values: [audit(25), audit(23)], format: 'JSONEachRow' });
    await p.ch!.command({ query: 'OPTIMIZE TABLE audit.api_calls FINAL' });
    const keys = (await queryRows<{ key_id: string }>(p.ch!, "SELECT key_id FROM audit.api_calls WHERE key_id LIKE 'k-%'")).map((r) => r.key_id);
    expect(keys).toEqual(['k-23']);
  });

  it('erases a terminated account when its retention ends, and keeps one still within it', async () => {
    const ts = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
    const sample = (account: string) => ({ id: `${account}-1`, account_id: account, resource_id: `vm-${account}`, resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 1, ts, interval_s: 60 });
    expect((await p.post([sample('acct-ended'), sample('acct-kept')])).status).toBe(202);
    await p.waitIdle();

    const kept = await terminateAccount(p.ch!, 'acct-kept', Date.now(), 12);
    expect(Date.parse(kept.delete_after!)).toBe(addMonthsUtc(Date.parse(kept.terminated_at!), 12));
    // This pipeline keeps terminated accounts 0 months: the sweep erases at once.
    const res = await fetch(`${p.url}/v1/accounts/acct-ended/terminate`, { method: 'POST', headers: { authorization: `Bearer ${KEYS.billing}` } });
    expect(res.status).toBe(200);
    expect((await res.json()).status).toBe('terminated');

    const rows = (a: string) => count(`SELECT count() AS n FROM billing.usage_hourly WHERE account_id = '${a}'`);
    for (let i = 0; i < 100 && (await rows('acct-ended')) > 0; i++) await sleep(100);
    expect(await rows('acct-ended')).toBe(0);
    expect(await count("SELECT count() AS n FROM billing.samples_raw WHERE account_id = 'acct-ended'")).toBe(0);
    expect(await rows('acct-kept')).toBe(1);
  });
});
