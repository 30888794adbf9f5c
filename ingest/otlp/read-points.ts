/**
 * One OTLP Resource's data points, read into buckets the mapping can apply to, with every
 * point that cannot be billed refused here, by reason (rejections.ts). Pure: no state, no
 * mapping applied yet. Kept apart from the translator so the refusal rules read as one list.
 *
 * - A metric is read by its kind: gauges, cumulative sums (monotonic: counters; non-monotonic:
 *   levels) and delta monotonic sums. Histograms, summaries, exponential histograms, sums
 *   without a temporality and non-monotonic deltas are refused, as are metrics no rule reads
 *   and every point of a Resource without a region or with a broken attribute limit.
 * - A point is refused here for what it carries: too many attributes, an integer beyond
 *   2^53, no time, the same series and time twice. (NaN, ±Inf and negative values are
 *   checked once the mapping has read them: translate.ts.)
 * - Cumulative and gauge points the shared state could not place safely are refused before
 *   they reach it: more than 5 minutes in the future (one would hold every later export back
 *   as stale), older than the state is kept (`maxAgeMs`), a start time after the point's time.
 * - Delta points need a window of at least a second and at most the counter's maximum gap
 *   (7 days): a scraped counter's gap that long is re-baselined rather than spread.
 * - Times are cut to whole seconds (the wire format's grid): two readings in one second are
 *   one slot. Cumulative and gauge points are bucketed by that slot, delta points by their
 *   (start, time] window.
 */
import { LIMITS } from '../../schemas/sample.js';
import { seriesKeyOf, type PromSample } from '../collectors/prometheus-text.js';
import { AGGREGATION_TEMPORALITY, TOO_MANY_ATTRIBUTES, type NumberPoint, type OtlpMetric, type OtlpResource } from './decode.js';
import { labelsOf, prometheusMetricName, type OtlpKind } from './names.js';
import type { Rejections } from './rejections.js';

const NS_PER_S = 1_000_000_000n;
export const DAY_MS = 86_400_000;
/** The resource attribute naming a sample's region (required: the wire format needs one). */
export const REGION_ATTRIBUTE = 'cloud.region';

export interface Bucket {
  /** Window end (a whole second) and, for a delta bucket, its start. */
  endMs: number;
  startMs?: number;
  samples: PromSample[];
  /** series key → how to name the point in a rejection */
  origin: Map<string, string>;
  /** series key → the point's start and exact time (cumulative buckets) */
  times: Map<string, { startNs: bigint; timeNs: bigint }>;
}

export interface ResourceBuckets {
  /** By slot (window end): cumulative sums and gauges. */
  cumulative: Map<number, Bucket>;
  /** By "start:end": delta sums. */
  delta: Map<string, Bucket>;
}

/** What a Resource's points are checked against. */
export interface PointRules {
  /** The Prometheus names some rule of the mapping reads. */
  knownSeries: ReadonlySet<string>;
  /** The mapping's reference, named when no rule reads a metric. */
  mappingRef: string;
  maxDeltaMs: number;
  maxAgeMs: number;
  nowMs: number;
}

export interface ResourcePoints {
  region: string;
  buckets: ResourceBuckets;
  /** Points placed in a bucket; 0 means the Resource has nothing to bill. */
  billable: number;
}

/** How one metric's points are read, once its kind allows them to be billed. */
interface MetricReading {
  what: string;
  name: string;
  kind: OtlpKind;
  delta: boolean;
}

export function readResourcePoints(resource: OtlpResource, rules: PointRules, rej: Rejections): ResourcePoints {
  const region = resource.attributes[REGION_ATTRIBUTE] ?? '';
  const buckets: ResourceBuckets = { cumulative: new Map(), delta: new Map() };
  let billable = 0;
  for (const scope of resource.scopes) {
    for (const metric of scope.metrics) {
      const reading = readMetric(metric, resource, region, rules, rej);
      if (!reading) continue;
      for (const point of reading.points) {
        if (readPoint(point, reading.as, scope.name, buckets, rules, rej)) billable++;
      }
    }
  }
  return { region, buckets, billable };
}

/** A metric's kind and name, or undefined with its points refused. */
function readMetric(
  metric: OtlpMetric,
  resource: OtlpResource,
  region: string,
  rules: PointRules,
  rej: Rejections,
): { as: MetricReading; points: NumberPoint[] } | undefined {
  const d = metric.data;
  const what = `"${metric.name}"`;
  if (d.type === 'none') return undefined;
  if ('pointCount' in d) {
    rej.add(`${what}: ${d.type.replace('_', ' ')} data points are not billed (only sums and gauges are)`, d.pointCount, 'unsupported_type');
    return undefined;
  }
  if (resource.problem) {
    rej.add(resource.problem, d.points.length, 'resource');
    return undefined;
  }
  let kind: OtlpKind;
  let delta = false;
  if (d.type === 'gauge') kind = 'gauge';
  else if (d.temporality === AGGREGATION_TEMPORALITY.unspecified) {
    rej.add(`${what}: a sum without an aggregation temporality cannot be read`, d.points.length, 'unsupported_type');
    return undefined;
  } else if (!d.monotonic) {
    if (d.temporality === AGGREGATION_TEMPORALITY.delta) {
      rej.add(`${what}: a non-monotonic delta sum is a change, not a level; export it with cumulative temporality`, d.points.length, 'unsupported_type');
      return undefined;
    }
    kind = 'non_monotonic_sum';
  } else {
    kind = 'monotonic_sum';
    delta = d.temporality === AGGREGATION_TEMPORALITY.delta;
  }
  const name = prometheusMetricName(metric.name, metric.unit, kind);
  if (!rules.knownSeries.has(name)) {
    rej.add(`${what} (as ${name}): no rule of mapping ${rules.mappingRef} bills it`, d.points.length, 'unmapped');
    return undefined;
  }
  if (region === '') {
    rej.add(`the resource has no ${REGION_ATTRIBUTE} attribute: a sample needs a region`, d.points.length, 'resource');
    return undefined;
  }
  return { as: { what, name, kind, delta }, points: d.points };
}

/** Places one point in its bucket; false when it has no value or is refused. */
function readPoint(point: NumberPoint, m: MetricReading, scopeName: string, buckets: ResourceBuckets, rules: PointRules, rej: Rejections): boolean {
  const { what, name, kind, delta } = m;
  if (point.value === undefined) return false; // no recorded value: a staleness marker, nothing to bill
  if (TOO_MANY_ATTRIBUTES in point.attributes) {
    rej.add(`${what}: a data point has more than 128 attributes`, 1, 'invalid_point');
    return false;
  }
  if (point.inexactInt) {
    rej.add(`${what}: an integer value beyond 2^53 cannot be billed exactly`, 1, 'invalid_point');
    return false;
  }
  if (point.timeNs <= 0n) {
    rej.add(`${what}: a data point without time_unix_nano`, 1, 'invalid_point');
    return false;
  }
  const bucket = delta ? deltaBucket(point, what, buckets, rules, rej) : cumulativeBucket(point, m, buckets, rules, rej);
  if (!bucket) return false;
  const labels = labelsOf(point.attributes, { otel_scope_name: scopeName });
  const key = seriesKeyOf(name, labels);
  if (bucket.origin.has(key)) {
    rej.add(`${what}: a repeated data point (same attributes and time) was ignored`, 1, 'duplicate');
    return false;
  }
  bucket.origin.set(key, what);
  if (!delta) bucket.times.set(key, { startNs: kind === 'monotonic_sum' ? point.startNs : 0n, timeNs: point.timeNs });
  bucket.samples.push({ name, labels, value: point.value, line: 0 });
  return true;
}

/** A delta point's bucket: its own (start, time] window, within the longest gap accepted. */
function deltaBucket(point: NumberPoint, what: string, buckets: ResourceBuckets, rules: PointRules, rej: Rejections): Bucket | undefined {
  const endMs = wholeSecondMs(point.timeNs);
  const startMs = wholeSecondMs(point.startNs);
  if (point.startNs <= 0n || startMs >= endMs) {
    rej.add(`${what}: a delta point needs start_time_unix_nano at least a whole second before time_unix_nano`, 1, 'invalid_point');
    return undefined;
  }
  if (endMs - startMs > rules.maxDeltaMs) {
    rej.add(`${what}: a delta window longer than ${rules.maxDeltaMs / 86_400_000} days is not spread over days it cannot place`, 1, 'invalid_point');
    return undefined;
  }
  const key = `${startMs}:${endMs}`;
  return buckets.delta.get(key) ?? newBucket(buckets.delta, key, endMs, startMs);
}

/** A cumulative or gauge point's bucket: its slot, if the shared state can place it. */
function cumulativeBucket(point: NumberPoint, m: MetricReading, buckets: ResourceBuckets, rules: PointRules, rej: Rejections): Bucket | undefined {
  const { what } = m;
  const endMs = wholeSecondMs(point.timeNs);
  // Refused before the shared state sees them: a future time would hold every
  // later export back as stale; one older than the state is kept could be a
  // baseline behind readings already billed.
  if (endMs > rules.nowMs + LIMITS.maxFutureMs) {
    rej.add(`${what}: a data point's time is more than ${LIMITS.maxFutureMs / 60_000} minutes in the future`, 1, 'out_of_time_range');
    return undefined;
  }
  if (endMs < rules.nowMs - rules.maxAgeMs) {
    rej.add(`${what}: a cumulative or gauge data point older than ${describeAge(rules.maxAgeMs)} is not billed (its series state is not kept that long)`, 1, 'out_of_time_range');
    return undefined;
  }
  if (m.kind === 'monotonic_sum' && point.startNs > point.timeNs) {
    rej.add(`${what}: a cumulative point's start_time_unix_nano is after its time_unix_nano`, 1, 'invalid_point');
    return undefined;
  }
  return buckets.cumulative.get(endMs) ?? newBucket(buckets.cumulative, endMs, endMs);
}

/** Epoch ms of the whole second a nanosecond time falls in (the wire format's grid). */
function wholeSecondMs(ns: bigint): number {
  return Number(ns / NS_PER_S) * 1000;
}

function describeAge(ms: number): string {
  return ms % DAY_MS === 0 ? `${ms / DAY_MS} days` : `${Math.round(ms / 60_000)} minutes`;
}

function newBucket<K>(map: Map<K, Bucket>, key: K, endMs: number, startMs?: number): Bucket {
  const b: Bucket = { endMs, ...(startMs === undefined ? {} : { startMs }), samples: [], origin: new Map(), times: new Map() };
  map.set(key, b);
  return b;
}
