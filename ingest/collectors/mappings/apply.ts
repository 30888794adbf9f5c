/**
 * Applies a mapping to one parsed scrape: groups the selected series by resource, resolves
 * each resource's account and id, and hands back raw readings. It does no arithmetic over
 * time; turning readings into per-window usage is counters.ts's job.
 *
 * A resource whose account or id cannot be resolved is returned as `unmapped` with the
 * reason, so the collector reports it instead of billing it to someone or dropping it quietly.
 */
import type { Metric, ResourceType } from '../../../schemas/sample.js';
import { wireScale } from '../../../schemas/metrics.js';
import type { GroupReading, SeriesReading } from '../counters.js';
import { seriesKeyOf, type MetricFamily, type PromSample } from '../prometheus-text.js';
import type { LabelMatcher, Mapping, SeriesTerm, ValueSource } from './schema.js';

/** What of a target a mapping may read. */
export interface TargetContext {
  id: string;
  region: string;
  resource_type?: ResourceType;
  labels: Readonly<Record<string, string>>;
  attributes: Readonly<Record<string, string>>;
}

export interface ResourceIdentity {
  account_id: string;
  resource_id: string;
  resource_type: ResourceType;
  region: string;
  attributes: Record<string, string>;
}

export interface MappedReading extends GroupReading {
  metric: Metric;
}

export interface MappedResource {
  identity: ResourceIdentity;
  readings: MappedReading[];
}

export interface UnmappedResource {
  /** The key label's value (e.g. the domain name), or "" for a one-resource target. */
  key: string;
  reason: string;
}

export interface MappingResult {
  resources: MappedResource[];
  unmapped: UnmappedResource[];
  /** Oddities worth a log line (series without the key label, duplicate info series, …). */
  notes: string[];
}

/**
 * The unit each metric is tracked in, as an integer multiple of the wire unit: a decimal
 * kind (cpu, gpu) in millionths (the catalogue's wire rule allows 6 decimals), bytes in
 * bytes. Integer arithmetic keeps sums exact: 0.1 + 0.2 CPU-seconds must bill as 0.3.
 */
export function unitScale(metric: Metric): number {
  return wireScale(metric);
}

/** The tracker's key for one (resource, metric): a resource moved to another account starts afresh. */
export function groupKeyOf(identity: ResourceIdentity, metric: Metric): string {
  return JSON.stringify([identity.account_id, identity.resource_id, metric]);
}

interface Bucket {
  /** metric → readings, in mapping order. */
  byMetric: Map<Metric, SeriesReading[]>;
}

export function applyMapping(mapping: Mapping, target: TargetContext, families: readonly MetricFamily[]): MappingResult {
  const compiled = compile(mapping);
  const samplesByName = new Map<string, PromSample[]>();
  for (const f of families) {
    for (const s of f.samples) {
      const list = samplesByName.get(s.name);
      if (list) list.push(s);
      else samplesByName.set(s.name, [s]);
    }
  }
  const notes: string[] = [];
  const keyLabel = mapping.resource.key_label;
  const keyOf = (s: PromSample): string | undefined => (keyLabel === undefined ? '' : s.labels[keyLabel] || undefined);

  const info = new Map<string, Readonly<Record<string, string>>>();
  if (mapping.resource.info_series) {
    for (const s of samplesByName.get(mapping.resource.info_series) ?? []) {
      const key = keyOf(s);
      if (key === undefined) continue;
      if (info.has(key)) notes.push(`${mapping.resource.info_series}: more than one series for ${keyLabel}; the first is used`);
      else info.set(key, s.labels);
    }
  }

  const active = new Map<string, boolean>();
  const gate = mapping.resource.active_when;
  if (gate) {
    for (const s of samplesByName.get(gate.series) ?? []) {
      const key = keyOf(s);
      if (key !== undefined && !active.has(key)) active.set(key, gate.values.includes(s.value));
    }
  }

  const buckets = new Map<string, Bucket>();
  let withoutKey = 0;
  for (const rule of compiled.rules) {
    rule.terms.forEach((term, termIndex) => {
      const distinctSeen = new Map<string, Set<string>>();
      for (const s of samplesByName.get(term.series) ?? []) {
        if (!term.matches(s.labels)) continue;
        const key = keyOf(s);
        if (key === undefined) {
          withoutKey++;
          continue;
        }
        if (term.distinct_by) {
          const seen = distinctSeen.get(key) ?? new Set<string>();
          distinctSeen.set(key, seen);
          const tuple = JSON.stringify(term.distinct_by.map((l) => s.labels[l] ?? ''));
          if (seen.has(tuple)) continue;
          seen.add(tuple);
        }
        let bucket = buckets.get(key);
        if (!bucket) buckets.set(key, (bucket = { byMetric: new Map() }));
        const list = bucket.byMetric.get(rule.metric) ?? [];
        bucket.byMetric.set(rule.metric, list);
        list.push({
          // The term index keeps two terms over one series apart (a mapping may do that).
          id: `${termIndex}:${seriesKeyOf(s.name, s.labels)}`,
          value: s.value,
          sign: term.sign ?? 1,
        });
      }
    });
  }
  if (withoutKey > 0) notes.push(`${withoutKey} selected series had no "${keyLabel}" label and were ignored`);
  if (gate && buckets.size > 0 && active.size === 0) {
    notes.push(`${gate.series} is missing: every resource is treated as active`);
  }

  const resources: MappedResource[] = [];
  const unmapped: UnmappedResource[] = [];
  for (const [key, bucket] of buckets) {
    const ctx: SourceContext = { target, key, info: info.get(key) };
    const account_id = resolve(mapping.account_id, ctx);
    const resource_id = resolve(mapping.resource_id, ctx);
    if (!account_id || !resource_id) {
      const field = !account_id ? 'account_id' : 'resource_id';
      unmapped.push({ key, reason: `no ${field} (tried ${describe(mapping[field])})` });
      continue;
    }
    const attributes: Record<string, string> = { ...target.attributes };
    for (const [name, sources] of Object.entries(mapping.attributes ?? {})) {
      const v = resolve(sources, ctx);
      if (v) attributes[name] = v;
    }
    const isActive = active.get(key) ?? true;
    const readings: MappedReading[] = [];
    for (const rule of compiled.rules) {
      const series = bucket.byMetric.get(rule.metric);
      if (!series) continue;
      readings.push({
        key: '', // set below, once the identity is known
        metric: rule.metric,
        kind: rule.kind,
        scale: unitScale(rule.metric),
        series: rule.kind === 'gauge' && !isActive ? series.map((r) => ({ ...r, value: 0 })) : series,
      });
    }
    const identity: ResourceIdentity = {
      account_id,
      resource_id,
      resource_type: target.resource_type ?? mapping.resource.type,
      region: target.region,
      attributes,
    };
    for (const r of readings) r.key = groupKeyOf(identity, r.metric);
    resources.push({ identity, readings });
  }
  return { resources, unmapped, notes };
}

interface SourceContext {
  target: TargetContext;
  key: string;
  info: Readonly<Record<string, string>> | undefined;
}

function resolve(sources: readonly ValueSource[], ctx: SourceContext): string | undefined {
  for (const s of sources) {
    let v: string | undefined;
    if (s.from === 'target_label') v = ctx.target.labels[s.name];
    else if (s.from === 'info_label') v = ctx.info?.[s.name];
    else if (s.from === 'key') v = ctx.key;
    else if (s.from === 'target_id') v = ctx.target.id;
    else v = s.value;
    if (v) return v;
  }
  return undefined;
}

function describe(sources: readonly ValueSource[]): string {
  return sources.map((s) => ('name' in s ? `${s.from} ${s.name}` : s.from)).join(', ');
}

interface CompiledTerm extends SeriesTerm {
  matches(labels: Readonly<Record<string, string>>): boolean;
}
interface CompiledMapping {
  rules: { metric: Metric; kind: 'counter' | 'gauge'; terms: CompiledTerm[] }[];
}

// Regular expressions are compiled once per mapping object, not once per scrape.
const compiledCache = new WeakMap<Mapping, CompiledMapping>();

function compile(mapping: Mapping): CompiledMapping {
  let c = compiledCache.get(mapping);
  if (!c) {
    c = {
      rules: mapping.metrics.map((r) => ({
        metric: r.metric,
        kind: r.kind,
        terms: r.terms.map((t) => ({ ...t, matches: compileMatchers(t.where ?? []) })),
      })),
    };
    compiledCache.set(mapping, c);
  }
  return c;
}

function compileMatchers(matchers: readonly LabelMatcher[]): (labels: Readonly<Record<string, string>>) => boolean {
  const tests = matchers.map((m) => {
    if (m.op === '=') return (v: string) => v === m.value;
    if (m.op === '!=') return (v: string) => v !== m.value;
    const re = new RegExp(`^(?:${m.value})$`, 'u');
    return m.op === '=~' ? (v: string) => re.test(v) : (v: string) => !re.test(v);
  });
  return (labels) => matchers.every((m, i) => tests[i]!(labels[m.label] ?? ''));
}
