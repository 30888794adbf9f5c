/**
 * Anonymized analytics stay anonymous: cohorts below k accounts are generalized along the
 * declared hierarchy (instance_type → '*', then zone → '*') or suppressed, identifier-like
 * attribute values never become labels, and the leak scanner finds any identifier that
 * does reach analytics or a dataset file.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runPrivacyScanCommand } from '../cli/privacy-scan.js';
import { queryRows } from '../lib/clickhouse.js';
import { scanAnalytics, scanFile } from '../queries/leak-scan.js';
import { startTestPipeline, type TestPipeline } from './support/pipeline.js';

const K = 5;
const HOUR = 3_600_000;
const ts = Math.floor(Date.now() / HOUR) * HOUR - HOUR; // inside the previous hour's window end
const hour = new Date(ts - HOUR).toISOString().replace('T', ' ').slice(0, 19);

// [accounts, zone, instance_type]: what each group of single-resource accounts runs.
const GROUPS: [number, string, string][] = [
  [6, 'eu-west-1a', 'm5.large'], //       level 0: a cell of 6 accounts
  [3, 'eu-west-1b', 'm5.large'], //       level 1: zone b pools to 5 accounts
  [2, 'eu-west-1b', 'c5.xlarge'],
  [1, 'eu-west-1c', 'm5.large'], //       level 2: region pool of 3 accounts, suppressed
  [1, 'eu-west-1a', 'alice@example.com'], // identifier-like labels become 'other' (then level 2)
  [1, 'eu-west-1a', 'host-9f8e7d6c5b4a3f2e.internal'],
];

const samples: Record<string, unknown>[] = [];
let n = 0;
for (const [count, zone, instanceType] of GROUPS) {
  for (let i = 0; i < count; i++, n++) {
    const account = `acct-an-${String(n).padStart(2, '0')}`;
    samples.push({
      id: `${account}-cpu`, account_id: account, resource_id: `vm-${account}`, resource_type: 'vm', region: 'eu-west-1', metric: 'cpu',
      value: 100 + n, ts, interval_s: 3600, attributes: { instance_type: instanceType, zone },
    });
  }
}

describe('anonymized analytics', () => {
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline('analytics', { K_ANONYMITY: String(K) });
    expect((await p.post(samples)).status).toBe(202);
    await p.waitIdle();
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('publishes only cells of at least k accounts, generalizing before suppressing', async () => {
    const cells = await queryRows<Record<string, unknown>>(
      p.ch!,
      `SELECT zone, instance_type, accounts, resources, toString(total) AS total, generalized FROM analytics.fleet_usage_hourly
       WHERE hour = {hour:String} AND metric = 'cpu' ORDER BY zone, instance_type`,
      { hour },
    );
    const sum = (from: number, to: number) => String(Array.from({ length: to - from }, (_, i) => 100 + from + i).reduce((a, b) => a + b, 0));
    expect(cells).toEqual([
      { zone: 'eu-west-1a', instance_type: 'm5.large', accounts: 6, resources: 6, total: sum(0, 6), generalized: 0 },
      { zone: 'eu-west-1b', instance_type: '*', accounts: 5, resources: 5, total: sum(6, 11), generalized: 1 },
    ]);
    const [report] = await queryRows<Record<string, unknown>>(
      p.ch!,
      "SELECT resources_total, resources_generalized, resources_zone_generalized, resources_label_generalized, label_values_generalized, resources_suppressed, k FROM analytics.suppression_hourly FINAL WHERE hour = {hour:String} AND metric = 'cpu'",
      { hour },
    );
    // Every label here is a region, zone or instance type name on the default allow-list
    // (or the 'other' placeholder): none is withheld as a value.
    expect(report).toEqual({
      resources_total: 14, resources_generalized: 8, resources_zone_generalized: 3, resources_label_generalized: 0, label_values_generalized: 0, resources_suppressed: 3, k: K,
    });
  });

  it('finds no identifier in a clean analytics database', async () => {
    const report = await scanAnalytics(p.ch!);
    expect(report.sources).toBeGreaterThan(3);
    expect(report.hits).toEqual([]);
  });

  it('finds identifiers planted in analytics and in dataset files', async () => {
    await p.ch!.insert({
      table: 'analytics.fleet_usage_hourly_versions',
      format: 'JSONEachRow',
      values: [
        { hour: ts / 1000, region: 'acct-an-03', zone: '*', resource_type: 'vm', instance_type: 'x', metric: 'cpu', version: 1 },
        { hour: ts / 1000, region: 'eu-west-1', zone: '*', resource_type: 'vm', instance_type: 'bob@example.com', metric: 'cpu', version: 1 },
        { hour: ts / 1000, region: 'eu-west-1', zone: 'from vm-acct-an-07 logs', resource_type: 'vm', instance_type: 'x', metric: 'cpu', version: 1 },
      ],
    });
    const report = await scanAnalytics(p.ch!);
    const found = report.hits.map((h) => `${h.source}=${h.value}`);
    expect(found).toContain('analytics.fleet_usage_hourly_versions.region=acct-an-03');
    expect(found).toContain('analytics.fleet_usage_hourly_versions.instance_type=bob@example.com');
    expect(found).toContain('analytics.fleet_usage_hourly_versions.zone=from vm-acct-an-07 logs');
    // The command (npm run privacy:scan) fails on them, printing each.
    const printed: string[] = [];
    const log = console.log;
    console.log = (s: string) => printed.push(s);
    try {
      expect(await runPrivacyScanCommand(['--data-dir', p.dataDir])).toBe(1);
    } finally {
      console.log = log;
    }
    expect(printed.filter((l) => l.startsWith('LEAK '))).toHaveLength(report.hits.length);
    await p.ch!.command({ query: 'DELETE FROM analytics.fleet_usage_hourly_versions WHERE version = 1' });

    const file = path.join(p.dataDir, 'dataset.csv');
    writeFileSync(file, 'region,series_key,value\neu-west-1,ok,1\nus-east-1,"vm-acct-an-11",2\n');
    const fileReport = await scanFile(p.ch!, file);
    expect(fileReport.hits).toEqual([{ source: `${file}:series_key`, value: 'vm-acct-an-11', reason: 'holds the billing identifier "vm-acct-an-11"' }]);
  });
});
