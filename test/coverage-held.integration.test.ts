/**
 * A real outage, end to end (issue 17): a real node_exporter is scraped by the pipeline's
 * pull collector every second, stopped for a stretch this test times itself, and started
 * again. The gauges held across the outage must come out marked: coverage counts those
 * seconds as held (not measured), the raw samples in the account export say
 * `estimated: "held"`, /metrics counts them as filled gap seconds for the target, and the
 * bill is the same sum of value × seconds over every sample, held or not.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './support/net.js';
import { NodeExporter } from './support/node-exporter.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
const OUTAGE_MS = 6_000;

interface ExportedSample { ts: string; interval_s: number; value: string; metric: string; estimated: string }

describe('a collector outage filled by held gauges', () => {
  let exporter: NodeExporter;
  let p: TestPipeline;

  beforeAll(async () => {
    exporter = new NodeExporter(await freePort());
    await exporter.start();
    const targets = {
      defaults: { region: 'eu-west-1', interval_s: 1, timeout_ms: 800 },
      targets: [{ id: 'node-gap', url: exporter.url, mapping: 'node_exporter', labels: { account_id: 'acct-gap', resource_id: 'host-gap' } }],
    };
    p = await startTestPipeline('held', { COLLECTOR_TARGETS: JSON.stringify(targets) });
  }, 60_000);
  afterAll(async () => {
    await p?.stop();
    await exporter?.stop();
  });

  it('reports the held seconds the test timed, apart from measured ones, and bills them as before', async () => {
    await sleep(3_000); // a baseline, then measured windows
    const stoppedAt = Date.now();
    await exporter.stop();
    await sleep(OUTAGE_MS);
    await exporter.start();
    const backAt = Date.now();
    const outageS = (backAt - stoppedAt) / 1000;
    await sleep(3_000); // the first scrape after the outage, and a few measured ones
    // Stopped for good: scrapes fail from now on, so nothing new arrives while the test reads
    // (a stretch with no success after it is never filled, and never marked).
    await exporter.stop();
    await sleep(1_500);
    await p.waitIdle();

    const exported = await fetch(`${p.url}/v1/accounts/acct-gap/export`, { headers: { authorization: `Bearer ${KEYS.privacy}` } });
    expect(exported.status).toBe(200);
    const doc = (await exported.json()) as { samples: ExportedSample[] };
    const memory = doc.samples.filter((s) => s.metric === 'memory').sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
    expect(memory.length).toBeGreaterThan(4);
    // Contiguous windows: every second from the first start to the last end once.
    memory.forEach((s, i) => {
      if (i > 0) expect(Date.parse(s.ts) - s.interval_s * 1000).toBe(Date.parse(memory[i - 1]!.ts));
    });
    const heldSamples = memory.filter((s) => s.estimated === 'held');
    const measuredSamples = memory.filter((s) => s.estimated === '');
    expect(heldSamples.length + measuredSamples.length).toBe(memory.length);
    // The held stretch that spans the outage: the windows between the last scrape before the
    // stop and the first after the start, less the last interval (measured by that scrape).
    const outageHeld = heldSamples.filter((s) => Date.parse(s.ts) > stoppedAt && Date.parse(s.ts) - s.interval_s * 1000 < backAt);
    expect(outageHeld.length).toBeGreaterThan(0);
    const heldSpanS = outageHeld.reduce((n, s) => n + s.interval_s, 0);
    // Slots are whole seconds: the collector's last success is up to ~1 s before the stop,
    // and its first success up to ~1 s after the exporter answered the test again.
    expect(heldSpanS).toBeGreaterThanOrEqual(Math.floor(outageS) - 2);
    expect(heldSpanS).toBeLessThanOrEqual(Math.ceil(outageS) + 2);
    const heldS = heldSamples.reduce((n, s) => n + s.interval_s, 0);
    const measuredS = measuredSamples.reduce((n, s) => n + s.interval_s, 0);

    const month = new Date(stoppedAt).toISOString().slice(0, 7);
    const cov = await p.get(`/v1/accounts/acct-gap/coverage?period=${month}`);
    expect(cov.status).toBe(200);
    const mem = cov.body.metrics.find((m: { metric: string }) => m.metric === 'memory');
    expect(mem).toMatchObject({ series: 1, held_s: String(heldS), measured_s: String(measuredS), covered_s: String(heldS + measuredS), gap_hours: 0 });
    expect(Number(mem.coverage_measured)).toBeLessThan(Number(mem.coverage));
    expect(mem.coverage_measured).toBe((measuredS / Number(mem.expected_s)).toFixed(4));

    // The bill: every sample, held or not, as value × seconds (memory is a gauge).
    const from = Math.floor(Date.parse(memory[0]!.ts) / HOUR) * HOUR - HOUR;
    const usage = await p.get(`/v1/accounts/acct-gap/usage?from=${from}&to=${from + 3 * HOUR}`);
    const billed = usage.body.rows.find((r: { metric: string }) => r.metric === 'memory');
    expect(billed.base_total).toBe(String(memory.reduce((n, s) => n + BigInt(s.value) * BigInt(s.interval_s), 0n)));
  }, 90_000);

  it('counts the filled gap seconds per target in /metrics', async () => {
    // The pipeline that scraped is stopped; start one that scrapes, make a short outage, and
    // read the target's series from the process that saw it.
    await p.stop();
    await exporter.start();
    const targets = {
      defaults: { region: 'eu-west-1', interval_s: 1, timeout_ms: 800 },
      targets: [{ id: 'node-gap', url: exporter.url, mapping: 'node_exporter', labels: { account_id: 'acct-gap2', resource_id: 'host-gap2' } }],
    };
    p = await startTestPipeline('held-metrics', { COLLECTOR_TARGETS: JSON.stringify(targets) });
    await sleep(2_500);
    const stoppedAt = Date.now();
    await exporter.stop();
    await sleep(4_000);
    await exporter.start();
    const outageS = (Date.now() - stoppedAt) / 1000;
    await sleep(2_500);
    const scrape = await p.get('/metrics', '');
    const value = (series: string) => Number(new RegExp(`^${series.replace(/[{}"]/g, '\\$&')} (\\S+)$`, 'm').exec(scrape.body)?.[1]);
    const filled = value('um_collector_gap_seconds{target="node-gap",outcome="filled"}');
    expect(filled).toBeGreaterThanOrEqual(Math.floor(outageS) - 2);
    // Slots skipped by a slow scrape on a busy machine are filled too: at most a few more.
    expect(filled).toBeLessThanOrEqual(Math.ceil(outageS) + 4);
    expect(value('um_collector_gap_seconds{target="node-gap",outcome="unfilled"}')).toBe(0);
    // Stopped for good before waiting: with a scrape a second, a busy machine may never see
    // the pipeline idle (a stretch with no success after it is never filled, nor counted).
    await exporter.stop();
    await p.waitIdle();
    const cov = await p.get(`/v1/accounts/acct-gap2/coverage?period=${new Date(stoppedAt).toISOString().slice(0, 7)}`);
    // What the collector counted is what coverage reports (all of the target's gauges share the gap).
    for (const m of cov.body.metrics.filter((x: { metric: string }) => x.metric === 'memory')) expect(Number(m.held_s)).toBe(filled);
  }, 60_000);
});
