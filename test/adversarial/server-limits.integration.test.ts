/**
 * Server mode under a ClickHouse server's default HTTP limits: the pipeline runs with
 * CLICKHOUSE_URL pointing at test/support/clickhouse-http.ts (the embedded engine behind
 * the subset of the HTTP interface @clickhouse/client uses, enforcing the server's default
 * http_max_field_value_size = 128 KiB and http_max_uri_size = 1 MiB). A 10k-sample batch,
 * then the very same batch again: the re-send must neither stall the rollup (every earlier
 * copy once travelled in one URL parameter, which the server refuses) nor bill twice. And
 * a sandbox statement of ~64 KiB goes through the same HTTP path.
 */
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startClickHouseHttp, type ClickHouseHttpEndpoint } from '../support/clickhouse-http.js';
import { expectedTotals, type SentSample } from '../support/oracle.js';
import { KEYS, startTestPipeline, type TestPipeline } from '../support/pipeline.js';

const HOUR = 3_600_000;
const end = Math.floor(Date.now() / HOUR) * HOUR;
const from = end - 3 * HOUR;
const ACCOUNTS = 10;

/** 10,000 samples over three hours: 10 accounts × 2 resources × 500 minutes-ish. */
const samples: SentSample[] = [];
for (let i = 0; i < 10_000; i++) {
  const a = i % ACCOUNTS;
  const r = Math.floor(i / ACCOUNTS) % 2;
  const n = Math.floor(i / (ACCOUNTS * 2));
  const ts = from + ((n % 170) + 1) * 60_000 + (n >= 170 ? (Math.floor(n / 170) * 7_000) : 0);
  const metric = n % 2 === 0 ? 'cpu' : 'bandwidth_out';
  samples.push({
    id: `limits-${a}-${r}-${n}`,
    account_id: `acct-limits-${a}`,
    resource_id: `vm-limits-${a}-${r}`,
    resource_type: 'vm',
    region: 'eu-west-1',
    metric,
    ts,
    interval_s: 60,
    value: metric === 'cpu' ? Number(((n % 97) * 0.013579).toFixed(6)) : 1_000 + n,
  } as SentSample);
}

describe('server mode under the server default HTTP limits', () => {
  let endpoint: ClickHouseHttpEndpoint;
  let p: TestPipeline;

  const totals = async (): Promise<{ complete: boolean; totals: Map<string, string> }> => {
    const out = new Map<string, string>();
    let complete = true;
    for (let a = 0; a < ACCOUNTS; a++) {
      const res = await p.get(`/v1/accounts/acct-limits-${a}/usage?from=${from}&to=${end}`);
      expect(res.status).toBe(200);
      complete &&= res.body.complete === true;
      for (const row of res.body.rows) out.set(`acct-limits-${a}|${row.metric}`, row.base_total);
    }
    return { complete, totals: out };
  };

  beforeAll(async () => {
    endpoint = await startClickHouseHttp(mkdtempSync(path.join(os.tmpdir(), 'um-chhttp-')));
    // The endpoint has no users: any credentials pass (server mode insists on analytics ones).
    p = await startTestPipeline('server-limits', { CLICKHOUSE_URL: endpoint.url, CLICKHOUSE_ANALYTICS_PASSWORD: 'test-support-only' });
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
    await endpoint?.close();
  });

  it('bills a 10k-sample batch sent twice exactly once, through the HTTP path', async () => {
    const first = await p.post(samples);
    expect(first.status).toBe(202);
    expect(first.body.accepted).toBe(10_000);
    await p.waitIdle(120_000);
    const once = await totals();
    expect(once.complete).toBe(true);
    expect(once.totals).toEqual(expectedTotals(samples));

    // The same batch again: a new batch of copies, every one an earlier copy's duplicate.
    const again = await p.post(samples);
    expect(again.status).toBe(202);
    expect(again.body.batch_id).not.toBe(first.body.batch_id);
    await p.waitIdle(120_000);
    const twice = await totals();
    expect(twice.complete).toBe(true);
    expect(twice.totals).toEqual(expectedTotals([...samples, ...samples]));
    expect(twice.totals).toEqual(once.totals);
    // The endpoint was in the path and refused nothing: the limits were never reached.
    expect(endpoint.requests).toBeGreaterThan(20);
    expect(endpoint.refused).toEqual({ uri: 0, field: 0 });
  }, 300_000);

  it('runs a sandbox statement of ~64 KiB through the same path', async () => {
    // Many distinct literals, non-ASCII as label values often are: a few bytes per
    // character, and several more once URL-encoded.
    let statement = 'SELECT count() AS n FROM fleet_usage_hourly WHERE zone NOT IN (';
    for (let i = 0; statement.length + 40 < 64 * 1024; i++) {
      statement += `${i ? ', ' : ''}'zöne-éüé-${String(i).padStart(6, '0')}'`;
    }
    statement += ')';
    expect(statement.length).toBeGreaterThan(63 * 1024);
    expect(statement.length).toBeLessThanOrEqual(64 * 1024);
    // URL-encoded, the text is far over the 128 KiB a server takes in one field.
    expect(encodeURIComponent(statement).length).toBeGreaterThan(128 * 1024);
    const res = await fetch(`${p.url}/v1/analytics/sql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${KEYS.planner}` },
      body: JSON.stringify({ sql: statement }),
    });
    const text = await res.text();
    expect(res.status, text.slice(0, 500)).toBe(200);
    expect(text).toContain('"n"');
    expect(endpoint.refused).toEqual({ uri: 0, field: 0 });
  }, 120_000);
});
