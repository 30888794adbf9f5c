/**
 * The pull collector against a REAL node_exporter (Debian package prometheus-node-exporter),
 * started here on a free loopback port. Samples go to an in-memory sink that validates them
 * with the wire-format parser; the real sink needs the whole pipeline.
 *
 * If the binary is missing the suite fails and says how to install it: a metering test that
 * silently skips would pass on exactly the machines where nobody checked it.
 */
import os from 'node:os';
import { freePort } from './support/net.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PullCollector } from '../ingest/collectors/collector.js';
import type { CollectorLogger } from '../ingest/collectors/logger.js';
import { resolveTargets } from '../ingest/collectors/targets.js';
import { MemorySink } from './fixtures/memory-sink.js';
import { NodeExporter } from './support/node-exporter.js';

const quiet: CollectorLogger = { info() {}, warn() {}, error() {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const slotNow = () => Math.floor(Date.now() / 1000) * 1000;

let exporter: NodeExporter;

beforeAll(async () => {
  // A missing binary fails here with the apt-get line (support/node-exporter.ts).
  exporter = new NodeExporter(await freePort());
  await exporter.start();
}, 30_000);

afterAll(async () => {
  await exporter?.stop();
});

function collectorFor(sink: MemorySink, extra: Array<{ id: string; url: string }> = []) {
  const { targets } = resolveTargets([
    {
      source: 'integration test',
      doc: {
        defaults: { region: 'eu-west-1', interval_s: 1, timeout_ms: 1000 },
        targets: [
          { id: 'node-it', url: exporter.url, mapping: 'node_exporter', labels: { account_id: 'acct-it', resource_id: 'host-it' } },
          ...extra.map((t) => ({ ...t, mapping: 'node_exporter', labels: { account_id: 'acct-it' } })),
        ],
      },
    },
  ]);
  return new PullCollector({ targets, sink, logger: quiet });
}

/** What the exporter itself says about this machine, read independently of the mapping code. */
async function exposedFacts(): Promise<{ realFs: boolean; physicalNic: boolean }> {
  const text = await (await fetch(exporter.url)).text();
  return {
    realFs: /^node_filesystem_size_bytes\{[^}]*fstype="(ext[234]|xfs|btrfs|zfs|vfat)"/m.test(text),
    physicalNic: /^node_network_receive_bytes_total\{device="(eth|en|wl)[^"]*"\}/m.test(text),
  };
}

describe('pull collector against a real node_exporter', () => {
  it('turns two scrapes into valid cpu, memory, storage and bandwidth samples', async () => {
    const sink = new MemorySink();
    const c = collectorFor(sink);
    const s1 = slotNow();
    expect(await c.scrapeOnce('node-it', s1)).toMatchObject({ ok: true, samples: 0, resources: 1 });
    await sleep(2100);
    const s2 = s1 + 2000;
    const report = await c.scrapeOnce('node-it', s2);
    expect(report.ok).toBe(true);

    const status = c.status()[0]!;
    expect(status.samples).toMatchObject({ rejected: 0, dropped: 0, pending: 0 });
    expect(status.samples.accepted).toBe(report.samples);

    const byMetric = sink.byMetric();
    const facts = await exposedFacts();
    const expected = ['cpu', 'memory', ...(facts.realFs ? ['storage'] : []), ...(facts.physicalNic ? ['bandwidth_in', 'bandwidth_out'] : [])];
    expect(Object.keys(byMetric).sort()).toEqual(expected.sort());
    // Two scrapes 2 s apart on a 1 s schedule: one slot was missed. Counters measure the
    // whole window; a gauge's reading is held over the missed second, and says so.
    for (const s of sink.accepted) {
      const gauge = s.metric === 'memory' || s.metric === 'storage';
      const expected = gauge && s.estimated === 'held' ? { ts_ms: s2 - 1000, interval_s: 1 } : gauge ? { ts_ms: s2, interval_s: 1 } : { ts_ms: s2, interval_s: 2 };
      expect(s).toMatchObject({ account_id: 'acct-it', resource_id: 'host-it', resource_type: 'vm', ...expected });
      if (!gauge) expect(s.estimated).toBeUndefined();
      expect(s.id).toMatch(/^pc1-[0-9a-f]{40}$/);
    }
    expect(byMetric.memory!.map((s) => s.estimated ?? 'measured').sort()).toEqual(['held', 'measured']);
    // CPU used in 2 s cannot exceed every CPU busy for the time between the two reads.
    const cpu = Number(byMetric.cpu![0]!.value);
    expect(cpu).toBeGreaterThanOrEqual(0);
    expect(cpu).toBeLessThanOrEqual(os.cpus().length * 4);
    const memory = Number(byMetric.memory![0]!.value);
    expect(memory).toBeGreaterThan(0);
    expect(memory).toBeLessThanOrEqual(os.totalmem());
    if (byMetric.storage) expect(Number(byMetric.storage[0]!.value)).toBeGreaterThan(1024 * 1024);
  }, 20_000);

  it('re-scraping the same slot is idempotent: same ids from another collector, nothing from the same one', async () => {
    const sinkA = new MemorySink();
    const sinkB = new MemorySink();
    const a = collectorFor(sinkA);
    const b = collectorFor(sinkB);
    const s1 = slotNow();
    await a.scrapeOnce('node-it', s1);
    await b.scrapeOnce('node-it', s1);
    await sleep(1100);
    await a.scrapeOnce('node-it', s1 + 1000);
    await b.scrapeOnce('node-it', s1 + 1000);
    const ids = (s: MemorySink) => s.accepted.map((x) => x.id).sort();
    expect(ids(sinkA).length).toBeGreaterThanOrEqual(2);
    expect(ids(sinkB)).toEqual(ids(sinkA));
    const again = await a.scrapeOnce('node-it', s1 + 1000);
    expect(again).toMatchObject({ ok: true, samples: 0 });
    expect(again.events.stale).toBe(ids(sinkA).length);
  }, 20_000);

  it('runs on its schedule while a dead target fails beside it', async () => {
    const sink = new MemorySink();
    const deadPort = await freePort(); // nothing listens there
    const c = collectorFor(sink, [{ id: 'dead', url: `http://127.0.0.1:${deadPort}/metrics` }]);
    c.start();
    await sleep(3600);
    await c.stop();
    const [node, dead] = c.status();
    expect(node).toMatchObject({ id: 'node-it', health: 'up', failures: 0 });
    expect(node!.scrapes).toBeGreaterThanOrEqual(3);
    expect(node!.samples.produced).toBeGreaterThan(0);
    expect(node!.samples).toMatchObject({ rejected: 0, dropped: 0, pending: 0, accepted: node!.samples.produced });
    expect(dead).toMatchObject({ health: 'down', lastError: { code: 'network', message: 'cannot reach the target: ECONNREFUSED' } });
    expect(dead!.consecutiveFailures).toBeGreaterThanOrEqual(3);
    // Contiguous windows on the 1 s grid: no usage falls between two of them, none twice.
    const cpu = sink.byMetric().cpu!.sort((a, b) => a.ts_ms - b.ts_ms);
    expect(cpu.length).toBeGreaterThanOrEqual(2);
    cpu.forEach((s, i) => {
      expect(s.ts_ms % 1000).toBe(0);
      if (i > 0) expect(s.ts_ms - s.interval_s * 1000).toBe(cpu[i - 1]!.ts_ms);
    });
  }, 20_000);

  it('bridges an exporter outage with one longer window', async () => {
    const sink = new MemorySink();
    const c = collectorFor(sink);
    const s1 = slotNow();
    await c.scrapeOnce('node-it', s1);
    await exporter.stop();
    await sleep(1100);
    const during = await c.scrapeOnce('node-it', s1 + 1000);
    expect(during.error?.code).toBe('network');
    expect(c.status()[0]!.health).toBe('down');
    await exporter.start();
    await sleep(1100);
    const s3 = slotNow();
    const after = await c.scrapeOnce('node-it', s3);
    expect(after.ok).toBe(true);
    const cpu = sink.byMetric().cpu!;
    expect(cpu).toHaveLength(1);
    expect(cpu[0]).toMatchObject({ ts_ms: s3, interval_s: (s3 - s1) / 1000 });
    expect(cpu[0]!.interval_s).toBeGreaterThanOrEqual(2);
    expect(c.status()[0]!.health).toBe('up');
  }, 40_000);
});
