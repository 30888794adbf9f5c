/**
 * PullCollector with an injected fetch: failure reporting per target, isolation between
 * targets, back-pressure and the outbox, the schedule. No network; the real exporter is in
 * collectors.integration.test.ts.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { BackpressureError } from '../ingest/accept.js';
import { PullCollector } from '../ingest/collectors/collector.js';
import type { CollectorLogger } from '../ingest/collectors/logger.js';
import { resolveTargets } from '../ingest/collectors/targets.js';
import { MemorySink } from './fixtures/memory-sink.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const T0 = Date.UTC(2025, 0, 1, 10, 0, 0);

function targets(list: Array<{ id: string; mapping?: string; timeout_ms?: number; interval_s?: number }>) {
  return resolveTargets([
    {
      source: 'test',
      doc: {
        defaults: { region: 'eu-west-1' },
        targets: list.map((t) => ({
          id: t.id,
          url: `http://${t.id}.test:9100/metrics?token=secret`,
          mapping: t.mapping ?? 'node_exporter',
          labels: { account_id: 'acct-1' },
          ...(t.timeout_ms ? { timeout_ms: t.timeout_ms } : {}),
          ...(t.interval_s ? { interval_s: t.interval_s } : {}),
        })),
      },
    },
  ]).targets;
}

class CapturingLogger implements CollectorLogger {
  readonly lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
  info(fields: Record<string, unknown>, msg: string) {
    this.lines.push({ level: 'info', msg, fields });
  }
  warn(fields: Record<string, unknown>, msg: string) {
    this.lines.push({ level: 'warn', msg, fields });
  }
  error(fields: Record<string, unknown>, msg: string) {
    this.lines.push({ level: 'error', msg, fields });
  }
}

const text = (body: string | Uint8Array<ArrayBuffer>, type = 'text/plain; version=0.0.4; charset=utf-8') =>
  new Response(body, { status: 200, headers: { 'content-type': type } });

/** node_exporter-like answer whose counters grow with n. */
function nodeText(n: number): string {
  return [
    '# TYPE node_cpu_seconds_total counter',
    `node_cpu_seconds_total{cpu="0",mode="user"} ${10 + n * 0.5}`,
    `node_cpu_seconds_total{cpu="0",mode="idle"} ${100 + n}`,
    `node_memory_MemTotal_bytes 8e+09`,
    `node_memory_MemAvailable_bytes 6e+09`,
    `node_filesystem_size_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"} 1e+10`,
    `node_network_receive_bytes_total{device="eth0"} ${1000 * n}`,
    `node_network_transmit_bytes_total{device="eth0"} ${500 * n}`,
    '',
  ].join('\n');
}

/** Routes by host name: each test target misbehaves in its own way. */
function fakeFetch(): typeof fetch & { served: Record<string, number> } {
  const served: Record<string, number> = {};
  const f = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const host = new URL(String(input)).hostname.split('.')[0]!;
    served[host] = (served[host] ?? 0) + 1;
    const n = served[host]!;
    switch (host) {
      case 'good':
        return text(nodeText(n));
      case 'fixture':
        return text(fixture(n === 1 ? 'node-exporter-a.prom' : 'node-exporter-b.prom'));
      case 'html':
        return new Response('<html><body>Sign in</body></html>', { status: 200, headers: { 'content-type': 'text/html' } });
      case 'garbage':
        return text('hello world, this is not metrics\n');
      case 'notfound':
        return new Response('404 page not found', { status: 404 });
      case 'binary':
        return text(new Uint8Array([0x6e, 0x6f, 0xff, 0xfe, 0x0a]));
      case 'huge':
        return text('a 1\n'.repeat(100_000));
      case 'libvirt':
        return text(fixture('libvirt-a.prom'));
      case 'down':
        throw new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) });
      case 'hang':
        return new Promise((_, reject) => {
          init?.signal?.addEventListener('abort', () => reject(init.signal!.reason));
        });
      default:
        throw new Error(`unexpected host ${host}`);
    }
  };
  return Object.assign(f as typeof fetch, { served });
}

describe('PullCollector', () => {
  it('turns two scrapes into validated samples with window ends on the slot grid', async () => {
    const sink = new MemorySink();
    const c = new PullCollector({ targets: targets([{ id: 'fixture' }]), sink, logger: new CapturingLogger(), fetch: fakeFetch() });
    expect(await c.scrapeOnce('fixture', T0)).toMatchObject({ ok: true, samples: 0, resources: 1, events: { baseline: 5 } });
    expect(await c.scrapeOnce('fixture', T0 + 60_000)).toMatchObject({ ok: true, samples: 5 });
    expect(sink.accepted.map((s) => [s.metric, s.value])).toEqual([
      ['cpu', '24.21'],
      ['memory', '2589934592'],
      ['storage', '161061273600'],
      ['bandwidth_in', '123456789'],
      ['bandwidth_out', '987654'],
    ]);
    expect(sink.accepted.every((s) => s.ts_ms === T0 + 60_000 && s.interval_s === 60 && s.account_id === 'acct-1')).toBe(true);
    const [status] = c.status();
    expect(status).toMatchObject({
      id: 'fixture',
      url: 'http://fixture.test:9100/metrics', // no query string: it may carry a token
      mapping: 'node_exporter@1',
      health: 'up',
      scrapes: 2,
      failures: 0,
      resources: 1,
      samples: { produced: 5, accepted: 5, rejected: 0, dropped: 0, pending: 0 },
    });
  });

  it('reports each kind of bad target by code, logs once per outage, and never throws', async () => {
    const logger = new CapturingLogger();
    const list = targets([
      { id: 'html' },
      { id: 'garbage' },
      { id: 'notfound' },
      { id: 'binary' },
      { id: 'down' },
      { id: 'hang', timeout_ms: 200 },
      { id: 'libvirt' }, // a one-resource mapping pointed at the wrong exporter
    ]);
    const c = new PullCollector({ targets: list, sink: new MemorySink(), logger, fetch: fakeFetch() });
    for (const t of list) await c.scrapeOnce(t.id, T0);
    await c.scrapeOnce('garbage', T0 + 60_000);
    const byId = Object.fromEntries(c.status().map((s) => [s.id, s]));
    expect(byId.html!.lastError).toMatchObject({ code: 'content_type', message: 'answered text/html, not the Prometheus text format' });
    expect(byId.garbage!.lastError).toMatchObject({ code: 'parse', message: 'not the Prometheus text format: line 1, column 7: sample value is not a number' });
    expect(byId.notfound!.lastError).toMatchObject({ code: 'http_status', message: 'answered HTTP 404' });
    expect(byId.binary!.lastError).toMatchObject({ code: 'not_utf8' });
    expect(byId.down!.lastError).toMatchObject({ code: 'network', message: 'cannot reach the target: ECONNREFUSED' });
    expect(byId.hang!.lastError).toMatchObject({ code: 'timeout', message: 'no complete answer within 200 ms' });
    expect(byId.libvirt!.lastError).toMatchObject({ code: 'mapping', message: 'no series of mapping node_exporter@1 in the answer' });
    for (const s of Object.values(byId)) expect(s.health).toBe('down');
    expect(byId.garbage).toMatchObject({ failures: 2, consecutiveFailures: 2 });
    const failureLogs = logger.lines.filter((l) => l.msg === 'scrape failed');
    expect(failureLogs).toHaveLength(list.length); // the second garbage failure is not logged again
    expect(JSON.stringify(logger.lines)).not.toContain('secret'); // the URL's query string stays out of logs
  });

  it('refuses an answer larger than maxBodyBytes', async () => {
    const c = new PullCollector({ targets: targets([{ id: 'huge' }]), sink: new MemorySink(), logger: new CapturingLogger(), fetch: fakeFetch(), maxBodyBytes: 1000 });
    expect((await c.scrapeOnce('huge', T0)).error).toMatchObject({ code: 'too_large' });
  });

  it('a hanging target does not hold up another one', async () => {
    const sink = new MemorySink();
    const c = new PullCollector({ targets: targets([{ id: 'hang', timeout_ms: 1000 }, { id: 'good' }]), sink, logger: new CapturingLogger(), fetch: fakeFetch() });
    const hang = c.scrapeOnce('hang', T0);
    let hangDone = false;
    void hang.then(() => (hangDone = true));
    await c.scrapeOnce('good', T0);
    await c.scrapeOnce('good', T0 + 60_000);
    expect(hangDone).toBe(false);
    expect(sink.accepted.length).toBe(5);
    expect((await hang).error?.code).toBe('timeout');
  });

  it('keeps samples through back-pressure and delivers them, once, with the next flush', async () => {
    const sink = new MemorySink();
    const c = new PullCollector({ targets: targets([{ id: 'good' }]), sink, logger: new CapturingLogger(), fetch: fakeFetch() });
    await c.scrapeOnce('good', T0);
    sink.failNext.push(new BackpressureError(1));
    await c.scrapeOnce('good', T0 + 60_000);
    expect(c.status()[0]!.samples).toMatchObject({ produced: 5, accepted: 0, pending: 5 });
    await c.scrapeOnce('good', T0 + 120_000);
    expect(c.status()[0]!.samples).toMatchObject({ produced: 10, accepted: 10, pending: 0 });
    expect(new Set(sink.accepted.map((s) => s.id)).size).toBe(10);
    expect(sink.accepted.filter((s) => s.metric === 'bandwidth_in').map((s) => [s.ts_ms, s.value])).toEqual([
      [T0 + 60_000, '1000'],
      [T0 + 120_000, '1000'],
    ]);
  });

  it('counts and logs samples the sink rejects, and drops (visibly) past the outbox bound', async () => {
    const logger = new CapturingLogger();
    // A sink whose clock is an hour behind sees every window end as "in the future".
    const sink = new MemorySink(() => T0 - 3_600_000);
    const c = new PullCollector({ targets: targets([{ id: 'good' }]), sink, logger, fetch: fakeFetch(), maxPendingPerTarget: 3 });
    await c.scrapeOnce('good', T0);
    await c.scrapeOnce('good', T0 + 60_000);
    expect(c.status()[0]!.samples).toMatchObject({ produced: 5, accepted: 0, rejected: 3, dropped: 2 });
    const rejected = logger.lines.find((l) => l.msg === 'collector samples rejected by validation')!;
    expect(rejected.level).toBe('error');
    expect(JSON.stringify(rejected.fields)).toContain('ts must not be more than 5 minutes in the future');
    expect(JSON.stringify(rejected.fields)).not.toContain('acct-1');
    expect(logger.lines.some((l) => l.level === 'error' && /outbox full/.test(l.msg))).toBe(true);
  });

  it('scrapes on its schedule, skips nothing for a slow neighbour, and stops promptly', async () => {
    const sink = new MemorySink();
    const fetchImpl = fakeFetch();
    const c = new PullCollector({
      targets: targets([{ id: 'good', interval_s: 1 }, { id: 'hang', interval_s: 1, timeout_ms: 1000 }]),
      sink,
      logger: new CapturingLogger(),
      fetch: fetchImpl,
    });
    c.start();
    await new Promise((r) => setTimeout(r, 3300));
    const stopping = Date.now();
    await c.stop();
    expect(Date.now() - stopping).toBeLessThan(1000);
    const good = c.status().find((s) => s.id === 'good')!;
    expect(good.health).toBe('up');
    expect(good.scrapes).toBeGreaterThanOrEqual(3);
    const cpu = sink.accepted.filter((s) => s.metric === 'cpu').sort((a, b) => a.ts_ms - b.ts_ms);
    expect(cpu.length).toBeGreaterThanOrEqual(2);
    // Windows sit on the 1 s grid and follow each other with no gap or overlap (a late
    // timer may make one window 2 s long, never leave a hole).
    cpu.forEach((s, i) => {
      expect(s.ts_ms % 1000).toBe(0);
      if (i > 0) expect(s.ts_ms - s.interval_s * 1000).toBe(cpu[i - 1]!.ts_ms);
    });
    const hang = c.status().find((s) => s.id === 'hang')!;
    expect(hang).toMatchObject({ health: 'down', lastError: { code: 'timeout' } });
    const served = fetchImpl.served.good!;
    await new Promise((r) => setTimeout(r, 1200));
    expect(fetchImpl.served.good).toBe(served); // no scrape after stop
  });
});
