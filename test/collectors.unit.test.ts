/**
 * Pure logic of the pull collectors: the exposition parser, counters → usage windows
 * (resets and missed scrapes worked out by hand), and the shipped mappings applied to
 * recorded exporter answers in test/fixtures/.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseSample } from '../schemas/sample.js';
import { splitWindow, UsageTracker, type GroupReading } from '../ingest/collectors/counters.js';
import { applyMapping, type TargetContext } from '../ingest/collectors/mappings/apply.js';
import { libvirtMapping, MappingRegistry, nodeExporterMapping } from '../ingest/collectors/mappings/index.js';
import { mappingSchema } from '../ingest/collectors/mappings/schema.js';
import { parsePrometheusText, PromParseError } from '../ingest/collectors/prometheus-text.js';
import { sampleId, windowsToSamples, type WindowOwner } from '../ingest/collectors/samples.js';
import { parseDocument, resolveTargets, TargetConfigError } from '../ingest/collectors/targets.js';

const fixture = (name: string) => readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8');
const T0 = Date.UTC(2025, 0, 1, 10, 0, 0); // 10:00:00Z
const S = 1000;

describe('prometheus text parser', () => {
  it('reads families, HELP/TYPE, labels with escapes, special values and timestamps', () => {
    const text = [
      '# A free comment',
      '# HELP http_requests_total The total number of HTTP requests.\\nSecond line, a backslash: \\\\',
      '# TYPE http_requests_total counter',
      'http_requests_total{method="post",code="200"} 1027 1395066363000',
      'http_requests_total{method="post",code="400"}    3   1395066363000',
      '',
      '# Escapes in label values',
      'msdos_file_access_time_seconds{path="C:\\\\DIR\\\\FILE.TXT",error="Cannot find file:\\n\\"FILE.TXT\\""} 1.458255915e9',
      'metric_without_timestamp_and_labels 12.47',
      'something_weird{problem="division by zero"} +Inf -3982045',
      'minus_inf -Inf',
      'not_a_number NaN',
      'trailing_comma{a="1",} 2',
      'spaces { a = "1" , b="2" } 3',
      '# TYPE rpc_duration_seconds summary',
      'rpc_duration_seconds{quantile="0.5"} 4773',
      'rpc_duration_seconds_sum 1.7560473e+07',
      'rpc_duration_seconds_count 2693',
      '# TYPE http_request_duration_seconds histogram',
      'http_request_duration_seconds_bucket{le="0.05"} 24054',
      'http_request_duration_seconds_bucket{le="+Inf"} 144320',
      'http_request_duration_seconds_sum 53423',
      'http_request_duration_seconds_count 144320',
      'weird_proto{__proto__="x",constructor="y"} 1',
    ].join('\r\n');
    const families = parsePrometheusText(text);
    const byName = new Map(families.map((f) => [f.name, f]));

    const http = byName.get('http_requests_total')!;
    expect(http.type).toBe('counter');
    expect(http.help).toBe('The total number of HTTP requests.\nSecond line, a backslash: \\');
    expect(http.samples.map((s) => [s.labels.code, s.value, s.timestampMs])).toEqual([
      ['200', 1027, 1395066363000],
      ['400', 3, 1395066363000],
    ]);
    const msdos = byName.get('msdos_file_access_time_seconds')!.samples[0]!;
    expect(msdos.labels.path).toBe('C:\\DIR\\FILE.TXT');
    expect(msdos.labels.error).toBe('Cannot find file:\n"FILE.TXT"');
    expect(msdos.value).toBe(1458255915);
    expect(byName.get('something_weird')!.samples[0]).toMatchObject({ value: Infinity, timestampMs: -3982045 });
    expect(byName.get('minus_inf')!.samples[0]!.value).toBe(-Infinity);
    expect(byName.get('not_a_number')!.samples[0]!.value).toBeNaN();
    expect({ ...byName.get('trailing_comma')!.samples[0]!.labels }).toEqual({ a: '1' });
    expect({ ...byName.get('spaces')!.samples[0]!.labels }).toEqual({ a: '1', b: '2' });
    expect(byName.get('rpc_duration_seconds')!.samples.map((s) => s.name)).toEqual([
      'rpc_duration_seconds',
      'rpc_duration_seconds_sum',
      'rpc_duration_seconds_count',
    ]);
    expect(byName.get('http_request_duration_seconds')!.samples).toHaveLength(4);
    expect(byName.has('http_request_duration_seconds_bucket')).toBe(false);
    const proto = byName.get('weird_proto')!.samples[0]!;
    expect(Object.keys(proto.labels)).toEqual(['__proto__', 'constructor']);
    expect(proto.labels.__proto__).toBe('x');
  });

  it('parses a real node_exporter 1.5.0 answer completely', () => {
    const families = parsePrometheusText(fixture('node-exporter-1.5.0.prom'));
    expect(families.length).toBeGreaterThan(100);
    const cpu = families.find((f) => f.name === 'node_cpu_seconds_total')!;
    expect(cpu.type).toBe('counter');
    expect(cpu.samples.length).toBeGreaterThan(0);
    expect(cpu.samples.every((s) => Number.isFinite(s.value) && typeof s.labels.mode === 'string')).toBe(true);
  });

  it('accepts OpenMetrics # EOF and stops there', () => {
    const families = parsePrometheusText('# TYPE a counter\na_total 1\n# EOF\n');
    expect(families[0]!.samples[0]).toMatchObject({ name: 'a_total', value: 1 });
  });

  const bad: Array<[string, string, RegExp]> = [
    ['html page', '<!DOCTYPE html>\n<html><body>Not Found</body></html>', /line 1, column 1: expected a metric name/],
    ['missing value', 'up\n', /line 1, column 3: expected a sample value/],
    ['missing value after labels', 'up{job="x"}\n', /expected a sample value/],
    ['value not a number', 'up one\n', /line 1, column 4: sample value is not a number/],
    ['hex float', 'up 0x1p-2\n', /not a number/],
    ['unterminated label value', 'up{job="x} 1\n', /unterminated label value/],
    ['label without quotes', 'up{job=x} 1\n', /expected a quoted value for label "job"/],
    ['missing =', 'up{job"x"} 1\n', /expected "=" after label name "job"/],
    ['bad escape', 'up{job="\\t"} 1\n', /invalid escape sequence/],
    ['duplicate label', 'up{a="1",a="2"} 1\n', /duplicate label "a"/],
    ['duplicate series', 'up{a="1"} 1\nup{a="1"} 2\n', /line 2, column 1: duplicate series/],
    ['text after timestamp', 'up 1 2 3\n', /unexpected text after the timestamp/],
    ['float timestamp', 'up 1 2.5\n', /timestamp must be whole epoch milliseconds/],
    ['name with a dash', 'node-cpu 1\n', /invalid character in metric name/],
    ['name starting with a digit', '9up 1\n', /expected a metric name/],
    ['unknown type', '# TYPE up gauges\n', /unknown metric type "gauges"/],
    ['second TYPE', '# TYPE up gauge\n# TYPE up counter\n', /second TYPE line/],
    ['TYPE after samples', 'up 1\n# TYPE up gauge\n', /TYPE line for "up" after its samples/],
    ['second HELP', '# HELP up a\n# HELP up b\n', /second HELP line/],
    ['labels not closed', 'up{a="1" b="2"} 1\n', /expected "," or "}"/],
  ];
  it.each(bad)('refuses %s with a located error', (_name, text, message) => {
    expect(() => parsePrometheusText(text)).toThrow(PromParseError);
    expect(() => parsePrometheusText(text)).toThrow(message);
  });

  it('refuses oversized input by its limits, quickly', () => {
    const many = Array.from({ length: 10 }, (_, i) => `a{i="${i}"} 1`).join('\n');
    expect(() => parsePrometheusText(many, { maxSamples: 5 })).toThrow(/line 6, column 1: more than 5 samples/);
    expect(() => parsePrometheusText(`a{l="${'x'.repeat(100)}"} 1`, { maxLabelValueLength: 10 })).toThrow(/label value longer than 10/);
    expect(() => parsePrometheusText('x'.repeat(70_000))).toThrow(/line is longer than/);
    const labels = Array.from({ length: 70 }, (_, i) => `l${i}="v"`).join(',');
    expect(() => parsePrometheusText(`a{${labels}} 1`)).toThrow(/more than 64 labels/);
    // A long digit run could make a naive float regex backtrack quadratically.
    const started = Date.now();
    expect(() => parsePrometheusText(`a ${'1'.repeat(60_000)}x`)).toThrow(PromParseError);
    expect(() => parsePrometheusText(`a{b="${'\\\\'.repeat(8000)}"} ${'9'.repeat(60)}`)).not.toThrow();
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('never crashes or hangs on random garbage: it parses or throws PromParseError', () => {
    let seed = 42;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const alphabet = 'a_{}="\\\n #,.:+-eE0123456789 \t\r\u0000\u00e9😀HELPTYPENaInf';
    const started = Date.now();
    for (let i = 0; i < 3000; i++) {
      const len = Math.floor(rand() * 200);
      let s = '';
      for (let j = 0; j < len; j++) s += alphabet[Math.floor(rand() * alphabet.length)];
      try {
        parsePrometheusText(s);
      } catch (err) {
        expect(err).toBeInstanceOf(PromParseError);
      }
    }
    expect(Date.now() - started).toBeLessThan(5000);
  });
});

describe('usage tracker: counters to windows', () => {
  const counter = (value: number, id = 'a'): GroupReading => ({ key: 'g', kind: 'counter', scale: 1, series: [{ id, value, sign: 1 }] });

  it('baseline, increase, reset, missed scrape — by hand', () => {
    const t = new UsageTracker();
    // 10:00:00 first reading: baseline only.
    expect(t.observe('target', T0, [counter(100)]).windows).toEqual([]);
    // 10:01:00 100 → 130: 30 bytes over 60 s.
    expect(t.observe('target', T0 + 60 * S, [counter(130)]).windows).toEqual([
      { key: 'g', startMs: T0, endMs: T0 + 60 * S, units: 30n, scale: 1 },
    ]);
    // 10:02:00 130 → 10: the counter restarted; usage since the restart is 10, never −120 or 130 + 10.
    const reset = t.observe('target', T0 + 120 * S, [counter(10)]);
    expect(reset.windows).toEqual([{ key: 'g', startMs: T0 + 60 * S, endMs: T0 + 120 * S, units: 10n, scale: 1 }]);
    expect(reset.events).toContainEqual({ type: 'reset', key: 'g', series: 'a' });
    // 10:03:00 scrape missed; 10:04:00 10 → 50: one window of 120 s carrying all 40.
    expect(t.observe('target', T0 + 240 * S, [counter(50)]).windows).toEqual([
      { key: 'g', startMs: T0 + 120 * S, endMs: T0 + 240 * S, units: 40n, scale: 1 },
    ]);
  });

  it('a gap longer than an hour is cut at hour boundaries, sharing the increase exactly', () => {
    const t = new UsageTracker();
    t.observe('x', T0 + 240 * S, [counter(50)]); // 10:04:00
    // 12:34:00, +1000 bytes over 9000 s: 10:04–11:00 (3360 s), 11:00–12:00 (3600 s), 12:00–12:34 (2040 s).
    const { windows } = t.observe('x', T0 + 9240 * S, [counter(1050)]);
    expect(windows.map((w) => [(w.endMs - w.startMs) / 1000, w.units])).toEqual([
      [3360, 373n], // floor(1000 × 3360 / 9000) = floor(373.33)
      [3600, 400n], // 1000 × 3600 / 9000
      [2040, 227n], // the remainder: 1000 − 373 − 400
    ]);
    expect(windows.reduce((a, w) => a + w.units, 0n)).toBe(1000n);
    expect(windows.map((w) => new Date(w.endMs).toISOString())).toEqual([
      '2025-01-01T11:00:00.000Z',
      '2025-01-01T12:00:00.000Z',
      '2025-01-01T12:34:00.000Z',
    ]);
  });

  it('splitWindow keeps windows of up to 3600 s whole', () => {
    expect(splitWindow(T0 + 1800 * S, T0 + 5400 * S)).toEqual([[T0 + 1800 * S, T0 + 5400 * S]]);
    expect(splitWindow(T0, T0 + 3601 * S)).toHaveLength(2);
  });

  it('sums cpu exactly in micro-seconds: 0.1 + 0.2 is 0.3', () => {
    const t = new UsageTracker();
    const cpu = (a: number, b: number): GroupReading => ({
      key: 'cpu',
      kind: 'counter',
      scale: 1e6,
      series: [
        { id: 'cpu0', value: a, sign: 1 },
        { id: 'cpu1', value: b, sign: 1 },
      ],
    });
    t.observe('h', T0, [cpu(0.1, 0.2)]);
    const [w] = t.observe('h', T0 + 60 * S, [cpu(0.2, 0.4)]).windows;
    expect(w!.units).toBe(300_000n);
    expect(Number(w!.units) / w!.scale).toBe(0.3);
  });

  it('takes deltas per series: one series vanishing is not a reset of the sum', () => {
    const t = new UsageTracker();
    const two = (a: number, b?: number): GroupReading => ({
      key: 'net',
      kind: 'counter',
      scale: 1,
      series: [{ id: 'eth0', value: a, sign: 1 }, ...(b === undefined ? [] : [{ id: 'eth1', value: b, sign: 1 as const }])],
    });
    t.observe('h', T0, [two(1000, 5000)]);
    expect(t.observe('h', T0 + 60 * S, [two(1100)]).windows[0]!.units).toBe(100n); // eth1 gone: 100, not a reset
    expect(t.observe('h', T0 + 120 * S, [two(1200, 5050)]).windows[0]!.units).toBe(150n); // eth1 back: +50 since last seen
  });

  it('a series new in a known group was created in the window and counts from zero', () => {
    const t = new UsageTracker();
    t.observe('h', T0, [counter(100, 'eth0')]);
    const r = t.observe('h', T0 + 60 * S, [
      { key: 'g', kind: 'counter', scale: 1, series: [{ id: 'eth0', value: 110, sign: 1 }, { id: 'tap1', value: 7, sign: 1 }] },
    ]);
    expect(r.windows[0]!.units).toBe(17n);
    expect(r.events).toContainEqual({ type: 'new_series', key: 'g', series: 'tap1' });
  });

  it('skips NaN readings and bills their usage with the next valid one', () => {
    const t = new UsageTracker();
    t.observe('h', T0, [counter(100)]);
    const nan = t.observe('h', T0 + 60 * S, [counter(NaN)]);
    expect(nan.windows[0]!.units).toBe(0n);
    expect(nan.events[0]).toMatchObject({ type: 'invalid' });
    expect(t.observe('h', T0 + 120 * S, [counter(160)]).windows[0]!.units).toBe(60n);
  });

  it('re-baselines a counter after a gap beyond counterMaxGapS and ignores stale slots', () => {
    const t = new UsageTracker({ counterMaxGapS: 600 });
    t.observe('h', T0, [counter(100)]);
    const r = t.observe('h', T0 + 601 * S, [counter(5000)]);
    expect(r.windows).toEqual([]);
    expect(r.events).toContainEqual({ type: 'gap_not_filled', key: 'g', gapS: 601 });
    expect(t.observe('h', T0 + 661 * S, [counter(5010)]).windows[0]!.units).toBe(10n);
    expect(t.observe('h', T0 + 661 * S, [counter(9999)]).events).toEqual([{ type: 'stale', key: 'g' }]);
  });

  it('holds a gauge over the window and over one missed scrape, not over long outages', () => {
    const t = new UsageTracker({ gaugeMaxGapS: 3600 });
    const mem = (total: number, avail: number): GroupReading => ({
      key: 'mem',
      kind: 'gauge',
      scale: 1,
      series: [
        { id: 'total', value: total, sign: 1 },
        { id: 'avail', value: avail, sign: -1 },
      ],
    });
    expect(t.observe('h', T0, [mem(8000, 6000)]).windows).toEqual([]);
    expect(t.observe('h', T0 + 60 * S, [mem(8000, 5000)]).windows).toEqual([
      { key: 'mem', startMs: T0, endMs: T0 + 60 * S, units: 3000n, scale: 1 },
    ]);
    expect(t.observe('h', T0 + 180 * S, [mem(8000, 4000)]).windows).toEqual([
      { key: 'mem', startMs: T0 + 60 * S, endMs: T0 + 180 * S, units: 4000n, scale: 1 },
    ]);
    const outage = t.observe('h', T0 + 7380 * S, [mem(8000, 4000)]);
    expect(outage.windows).toEqual([]);
    expect(outage.events).toContainEqual({ type: 'gap_not_filled', key: 'mem', gapS: 7200 });
    expect(t.observe('h', T0 + 7440 * S, [mem(100, 200)]).events).toContainEqual({
      type: 'invalid',
      key: 'mem',
      reason: 'gauge terms sum to a negative value',
    });
  });

  it('keeps targets apart', () => {
    const t = new UsageTracker();
    t.observe('a', T0, [counter(100)]);
    expect(t.observe('b', T0 + 60 * S, [counter(500)]).windows).toEqual([]); // b's own baseline
    expect(t.observe('a', T0 + 60 * S, [counter(150)]).windows[0]!.units).toBe(50n);
    t.forget('a');
    expect(t.size()).toEqual({ groups: 1, series: 1 });
  });
});

/** Runs a mapping over two recorded scrapes 60 s apart and returns the wire samples of the second. */
function twoScrapes(mapping = nodeExporterMapping, target: TargetContext, a: string, b: string) {
  const tracker = new UsageTracker();
  const run = (text: string, slot: number) => {
    const mapped = applyMapping(mapping, target, parsePrometheusText(text));
    const owners = new Map<string, WindowOwner>();
    for (const r of mapped.resources) for (const g of r.readings) owners.set(g.key, { identity: r.identity, metric: g.metric });
    const { windows } = tracker.observe(target.id, slot, mapped.resources.flatMap((r) => r.readings));
    return { mapped, ...windowsToSamples({ mappingRef: `${mapping.name}@${mapping.version}`, targetId: target.id }, owners, windows) };
  };
  const first = run(a, T0);
  expect(first.samples).toEqual([]);
  return run(b, T0 + 60 * S);
}

const valueOf = (samples: ReadonlyArray<{ metric: string; resource_id: string; value: number }>, resource: string, metric: string) =>
  samples.find((s) => s.resource_id === resource && s.metric === metric)?.value;

describe('node_exporter mapping', () => {
  const target: TargetContext = {
    id: 'host-17',
    region: 'eu-west-1',
    labels: { account_id: 'acct-42', resource_id: 'vm-17' },
    attributes: { instance_type: 'm5.large' },
  };

  it('bills non-idle cpu, memory in use, real filesystems once, physical nics', () => {
    const { samples } = twoScrapes(nodeExporterMapping, target, fixture('node-exporter-a.prom'), fixture('node-exporter-b.prom'));
    // cpu0: softirq +0.05, system +3.21, user +12.34; cpu1: system +1.11, user +7.5.
    // idle, iowait and steal moved too, and are not billed.
    expect(valueOf(samples, 'vm-17', 'cpu')).toBe(24.21);
    // MemTotal 8589934592 − MemAvailable 6000000000.
    expect(valueOf(samples, 'vm-17', 'memory')).toBe(2_589_934_592);
    // /dev/vda1 100 GiB (mounted twice, counted once) + /dev/vdb 50 GiB; tmpfs, overlay, squashfs excluded.
    expect(valueOf(samples, 'vm-17', 'storage')).toBe(161_061_273_600);
    // eth0 only: lo, docker0 and veth are virtual.
    expect(valueOf(samples, 'vm-17', 'bandwidth_in')).toBe(123_456_789);
    expect(valueOf(samples, 'vm-17', 'bandwidth_out')).toBe(987_654);
    expect(samples).toHaveLength(5);
    for (const s of samples) {
      expect(s).toMatchObject({ account_id: 'acct-42', resource_type: 'vm', region: 'eu-west-1', ts: T0 + 60 * S, interval_s: 60 });
      expect(s.attributes).toEqual({ instance_type: 'm5.large' });
      expect(parseSample(s, T0 + 120 * S)).toMatchObject({ ok: true });
    }
  });

  it('falls back to the target id for resource_id and reports a target without account', () => {
    const noResource = { ...target, labels: { account_id: 'acct-42' } };
    const mapped = applyMapping(nodeExporterMapping, noResource, parsePrometheusText(fixture('node-exporter-a.prom')));
    expect(mapped.resources[0]!.identity.resource_id).toBe('host-17');
    const noAccount = applyMapping(nodeExporterMapping, { ...target, labels: {} }, parsePrometheusText(fixture('node-exporter-a.prom')));
    expect(noAccount.resources).toEqual([]);
    expect(noAccount.unmapped).toEqual([{ key: '', reason: 'no account_id (tried target_label account_id)' }]);
  });
});

describe('libvirt exporter mapping', () => {
  const target: TargetContext = { id: 'hv-3', region: 'eu-west-1', labels: {}, attributes: {} };
  const A = '6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';
  const B = '0f8e2a44-1d51-4c8e-9a1b-7b6f0c2d9e11';
  const C = 'c0ffee00-1111-4222-8333-444455556666';

  it('maps each domain to its OpenStack project and instance, by hand-computed values', () => {
    const { samples, mapped } = twoScrapes(libvirtMapping, target, fixture('libvirt-a.prom'), fixture('libvirt-b.prom'));

    // 0000001a: cpu 12345.678901234 → 12375.123456789 s, in whole micro-seconds: 12375123457 − 12345678901.
    expect(valueOf(samples, A, 'cpu')).toBe(29.444556);
    expect(valueOf(samples, A, 'memory')).toBe(2_147_483_648);
    expect(valueOf(samples, A, 'storage')).toBe(21_474_836_480 + 10_737_418_240);
    // +7340032 on the old tap, +4096 on the hot-plugged one (new: counted from zero).
    expect(valueOf(samples, A, 'bandwidth_in')).toBe(7_344_128);
    expect(valueOf(samples, A, 'bandwidth_out')).toBe(1_050_624);

    // 0000001b rebooted: every counter restarted, so usage is the new value.
    expect(valueOf(samples, B, 'cpu')).toBe(12.25);
    expect(valueOf(samples, B, 'bandwidth_in')).toBe(1_000_000);
    expect(valueOf(samples, B, 'bandwidth_out')).toBe(500_000);
    expect(valueOf(samples, B, 'memory')).toBe(8_589_934_592);

    // 0000001c is shut off: its configured memory is exported but not held.
    expect(valueOf(samples, C, 'memory')).toBe(0);
    expect(valueOf(samples, C, 'cpu')).toBe(0);
    expect(valueOf(samples, C, 'storage')).toBeUndefined();

    // scratch-vm has no OpenStack project: reported, not billed to anyone.
    expect(mapped.unmapped).toEqual([{ key: 'scratch-vm', reason: 'no account_id (tried info_label project_id)' }]);
    expect(samples.some((s) => s.resource_id === 'a1b2c3d4-0000-4000-8000-0000000000aa')).toBe(false);

    const a = samples.find((s) => s.resource_id === A)!;
    expect(a).toMatchObject({ account_id: '3b5c57d6102f4c2bbb6361807ae1368c', attributes: { instance_type: 'm1.small' } });
    expect(samples.find((s) => s.resource_id === B)!.account_id).toBe('894c28b5bc4247c3a1841e5ff43d0d88');
    expect(samples).toHaveLength(5 + 5 + 2);
    for (const s of samples) expect(parseSample(s, T0 + 120 * S)).toMatchObject({ ok: true });
  });

  it('treats every domain as active when the state series is missing, and says so', () => {
    const text = fixture('libvirt-a.prom').split('\n').filter((l) => !l.includes('libvirt_domain_info_state')).join('\n');
    const mapped = applyMapping(libvirtMapping, target, parsePrometheusText(text));
    const c = mapped.resources.find((r) => r.identity.resource_id === C)!;
    expect(c.readings.find((r) => r.metric === 'memory')!.series[0]!.value).toBe(4_294_967_296);
    expect(mapped.notes).toContain('libvirt_domain_info_state is missing: every resource is treated as active');
  });
});

describe('mapping schema', () => {
  it('refuses a mapping that would bill wrongly, with the path of the problem', () => {
    const base = { ...nodeExporterMapping, metrics: [...nodeExporterMapping.metrics] };
    const twice = mappingSchema.safeParse({ ...base, metrics: [...base.metrics, base.metrics[0]] });
    expect(twice.success).toBe(false);
    expect(twice.error!.issues[0]!.message).toBe('metric "cpu" is mapped twice');
    const subtract = mappingSchema.safeParse({
      ...base,
      metrics: [{ metric: 'cpu', kind: 'counter', terms: [{ series: 'a_total' }, { series: 'b_total', sign: -1 }] }],
    });
    expect(subtract.error!.issues[0]!.message).toMatch(/counter terms cannot be subtracted/);
    const badRegex = mappingSchema.safeParse({
      ...base,
      metrics: [{ metric: 'cpu', kind: 'counter', terms: [{ series: 'a_total', where: [{ label: 'x', op: '=~', value: '(' }] }] }],
    });
    expect(badRegex.error!.issues[0]!.path).toEqual(['metrics', 0, 'terms', 0, 'where', 0, 'value']);
    const infoWithoutKey = mappingSchema.safeParse({ ...base, account_id: [{ from: 'info_label', name: 'project_id' }] });
    expect(infoWithoutKey.error!.issues.map((i) => i.message)).toContain('info_label sources need resource.info_series');
  });

  it('resolves names to the latest version and pinned versions exactly', () => {
    const v2 = { ...nodeExporterMapping, version: 2 };
    const reg = new MappingRegistry([nodeExporterMapping, v2, libvirtMapping]);
    expect(reg.resolve('node_exporter')).toBe(v2);
    expect(reg.resolve('node_exporter@1')).toBe(nodeExporterMapping);
    expect(reg.resolve('nope')).toBeUndefined();
    expect(() => new MappingRegistry([nodeExporterMapping, nodeExporterMapping])).toThrow(/declared twice/);
  });
});

describe('sample ids', () => {
  const identity = { account_id: 'a', resource_id: 'r', resource_type: 'vm' as const, region: 'eu-west-1', attributes: {} };
  it('are the same for the same window and differ for any other', () => {
    const ctx = { mappingRef: 'node_exporter@1', targetId: 't' };
    const id = sampleId(ctx, identity, 'cpu', T0);
    expect(id).toMatch(/^pc1-[0-9a-f]{40}$/);
    expect(sampleId(ctx, identity, 'cpu', T0)).toBe(id);
    expect(sampleId(ctx, identity, 'cpu', T0 + S)).not.toBe(id);
    expect(sampleId(ctx, identity, 'memory', T0)).not.toBe(id);
    expect(sampleId({ ...ctx, mappingRef: 'node_exporter@2' }, identity, 'cpu', T0)).not.toBe(id);
  });
});

describe('targets', () => {
  const doc = (o: unknown) => parseDocument(JSON.stringify(o), 'test');

  it('applies defaults and resolves mappings', () => {
    const list = resolveTargets([
      {
        source: 'file',
        doc: doc({
          defaults: { region: 'eu-west-1', interval_s: 30, attributes: { zone: 'eu-west-1a' } },
          targets: [
            { id: 'host-1', url: 'http://10.0.0.1:9100/metrics', mapping: 'node_exporter', labels: { account_id: 'acct-1' } },
            { id: 'hv-1', url: 'http://10.0.1.1:9177/metrics', mapping: 'libvirt@1', region: 'us-east-1', timeout_ms: 2000 },
          ],
        }),
      },
      { source: 'env', doc: doc([{ id: 'host-2', url: 'https://h2/metrics', mapping: 'node_exporter', region: 'eu-west-2', labels: { account_id: 'a2' } }]) },
    ]);
    expect(list.targets.map((t) => [t.id, t.region, t.interval_s, t.timeout_ms, t.mappingDef.name])).toEqual([
      ['host-1', 'eu-west-1', 30, 10_000, 'node_exporter'],
      ['hv-1', 'us-east-1', 30, 2000, 'libvirt'],
      ['host-2', 'eu-west-2', 60, 10_000, 'node_exporter'],
    ]);
    expect(list.targets[0]!.attributes).toEqual({ zone: 'eu-west-1a' });
  });

  it('names the source, target and field of every problem', () => {
    expect(() => doc({ targets: [{ id: 'x', url: 'ftp://x', mapping: 'node_exporter' }] })).toThrow(/targets\[0\]\.url: url must be an http\(s\) URL/);
    expect(() => doc({ targets: [{ id: 'x', url: 'http://u:p@x/', mapping: 'node_exporter' }] })).toThrow(/must not carry credentials/);
    expect(() => doc({ targets: [{ id: 'x', url: 'http://x/', mapping: 'n', extra: 1 }] })).toThrow(TargetConfigError);
    expect(() => parseDocument('{', 'COLLECTOR_TARGETS')).toThrow('COLLECTOR_TARGETS: not valid JSON');
    const problems = () =>
      resolveTargets([
        {
          source: 'file',
          doc: doc([
            { id: 'a', url: 'http://a/', mapping: 'node_exporter', region: 'eu-west-1' },
            { id: 'a', url: 'http://b/', mapping: 'snmp', region: 'eu-west-1' },
            { id: 'c', url: 'http://c/', mapping: 'libvirt', interval_s: 5, timeout_ms: 6000 },
          ]),
        },
      ]);
    expect(problems).toThrow(
      'file: targets[0] (a).labels: mapping node_exporter takes account_id from the target label account_id, which is missing',
    );
    expect(problems).toThrow(/targets\[1\] \(a\): duplicate target id/);
    expect(problems).toThrow(/unknown mapping "snmp" \(known: libvirt@1, node_exporter@1\)/);
    expect(problems).toThrow(/targets\[2\] \(c\)\.region: required/);
    expect(problems).toThrow(/targets\[2\] \(c\)\.timeout_ms: must not exceed interval_s \(5 s\)/);
  });

  it('accepts mappings declared in the document', () => {
    const custom = { ...libvirtMapping, name: 'libvirt_single_tenant', account_id: [{ from: 'target_label', name: 'account_id' }] };
    const list = resolveTargets([
      { source: 'file', doc: doc({ mappings: [custom], targets: [{ id: 'hv', url: 'http://hv/', mapping: 'libvirt_single_tenant', region: 'eu-west-1', labels: { account_id: 'a' } }] }) },
    ]);
    expect(list.targets[0]!.mappingDef.name).toBe('libvirt_single_tenant');
  });
});
