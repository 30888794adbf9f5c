/**
 * Collectors wired into the real pipeline: a real node_exporter scraped by the ingest
 * process ends up billed through the usage API, and `usage-meter import` backfills a file
 * through the same validated path.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './support/net.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runImportCommand } from '../cli/import.js';
import { startTestPipeline, type TestPipeline } from './support/pipeline.js';


describe('pull collector in the pipeline', () => {
  let exporter: ChildProcess;
  let p: TestPipeline;

  beforeAll(async () => {
    const port = await freePort();
    exporter = spawn('prometheus-node-exporter', [`--web.listen-address=127.0.0.1:${port}`], { stdio: 'ignore' });
    exporter.on('error', () => undefined); // reported by the readiness wait below
    const url = `http://127.0.0.1:${port}/metrics`;
    for (let i = 0; (await fetch(url).then((r) => r.ok, () => false)) === false; i++) {
      if (i > 100) throw new Error('node_exporter did not start: apt-get install prometheus-node-exporter');
      await sleep(100);
    }
    const targets = {
      defaults: { region: 'eu-west-1', interval_s: 1, timeout_ms: 1000 },
      targets: [
        { id: 'node-pipeline', url, mapping: 'node_exporter', labels: { account_id: 'acct-node', resource_id: 'host-node' } },
        // The same exporter under another account: two healthy targets beside a dead one.
        { id: 'node-twin', url, mapping: 'node_exporter', labels: { account_id: 'acct-twin', resource_id: 'host-twin' } },
        // Nothing listens here: reported in /readyz and /metrics, never fatal, never blocking the others.
        { id: 'node-down', url: `http://127.0.0.1:${await freePort()}/metrics`, mapping: 'node_exporter', labels: { account_id: 'acct-x', resource_id: 'h' } },
      ],
    };
    p = await startTestPipeline('collect', { COLLECTOR_TARGETS: JSON.stringify(targets) });
  });
  afterAll(async () => {
    await p?.stop();
    exporter?.kill('SIGTERM');
  });

  it('bills what it scrapes, and reports the target in /metrics', async () => {
    await sleep(3500); // a baseline scrape, then at least two billed windows
    await p.waitIdle();
    const now = Date.now();
    const from = Math.floor(now / 3_600_000) * 3_600_000 - 3_600_000;
    const res = await p.get(`/v1/accounts/acct-node/usage?from=${from}&to=${from + 3 * 3_600_000}`);
    expect(res.status).toBe(200);
    const metrics = new Set(res.body.rows.map((r: { metric: string }) => r.metric));
    for (const m of ['cpu', 'memory', 'storage']) expect(metrics.has(m), `no ${m} billed`).toBe(true);
    const memory = res.body.rows.find((r: { metric: string }) => r.metric === 'memory');
    expect(BigInt(memory.base_total)).toBeGreaterThan(0n);
    const scrape = await p.get('/metrics', '');
    expect(scrape.body).toContain('um_collector_target_up{target="node-pipeline"} 1');
    // Per target: when it last worked, how long it took, how often it failed, what it dropped.
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(scrape.body)?.[1]);
    expect(value('um_collector_last_success_timestamp_seconds{target="node-pipeline"}')).toBeGreaterThan(now / 1000 - 60);
    expect(value('um_collector_scrapes{target="node-down",outcome="failure"}')).toBeGreaterThan(0);
    expect(value('um_collector_last_success_timestamp_seconds{target="node-down"}')).toBe(0);
    expect(value('um_collector_samples_delivered{target="node-pipeline",result="accepted"}')).toBeGreaterThan(0);
    expect(scrape.body).toMatch(/^um_collector_unfilled_gaps\{target="node-pipeline"\} \d+$/m);
    expect(scrape.body).toContain('um_dead_letter_batches 0');
    expect(scrape.body).toContain('um_batch_failures_total{final="true"} 0');
    const ready = await p.get('/readyz', '');
    expect(ready.status).toBe(200);
    // Down targets say why in words, not only by code.
    expect(ready.body.collector_targets).toEqual({ up: 2, down: [{ target: 'node-down', error: 'network', message: expect.stringMatching(/\S/) }], unknown: 0 });
  });
});

describe('import command', () => {
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline('import', { RAW_RETENTION_DAYS: '3650' }); // the fixture is from 2025
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('backfills NDJSON through the same path, reports bad rows by line, and bills re-imports once', async () => {
    const file = new URL('./fixtures/import-samples.ndjson', import.meta.url).pathname;
    const args = [file, '--key-prefix', p.config.KEY_PREFIX, '--raw-retention-days', '3650'];
    const logs: string[] = [];
    const original = console.log;
    console.log = (s: string) => logs.push(s);
    try {
      expect(await runImportCommand(args)).toBe(1); // the fixture holds bad rows on purpose
      expect(await runImportCommand(args)).toBe(1);
    } finally {
      console.log = original;
    }
    expect(logs.join('\n')).toMatch(/line 4/);
    await p.waitIdle();
    const res = await p.get('/v1/accounts/acct-1/usage?from=2025-03-01&to=2025-03-02');
    const cpu = res.body.rows.find((r: { metric: string }) => r.metric === 'cpu');
    expect(cpu.base_total).toBe('12.5'); // imported twice, billed once
  });
});
