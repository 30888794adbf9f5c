/**
 * OTLP metrics → wire samples, by the pull collectors' own rules:
 *
 *   names.ts (OTLP → Prometheus names) → mappings/apply.ts (which series bill what, for whom)
 *   → counters.ts UsageTracker (cumulative sums and gauges) or the delta path below
 *   → samples.ts windowsToSamples → the acceptor.
 *
 * - **Gauges** (and non-monotonic cumulative sums, which are levels) go through the tracker
 *   like a scraped gauge: a level is held over (previous reading, this one].
 * - **Cumulative monotonic sums** go through the tracker like a scraped counter: per-series
 *   deltas, the first reading of a group a baseline (what an earlier process billed is
 *   unknown), a lower value a reset. `start_time_unix_nano` is part of the series' identity,
 *   so a new start time is a new series in a known group: it counts from zero, which is the
 *   reset rule (the usage since the restart is the new value).
 * - **Delta monotonic sums** are used as they are: each point's (start, time] is a window,
 *   its value the usage in it, summed per group like the counter terms of a mapping.
 *   Windows longer than an hour are cut at UTC hours with the counter's exact proportional
 *   share; longer than the counter's maximum gap (7 days) they are refused, as a scraped
 *   counter's gap that long is re-baselined rather than spread.
 * - Times are cut to whole seconds (the wire format's grid): two readings in one second
 *   are one slot; the later one is `stale` and its usage lands in the next window.
 *
 * Everything not billed is counted in `rejections` with a reason: histograms, summaries,
 * exponential histograms, metrics no rule reads, NaN/±Inf/negative values, points without a
 * time, a Resource without an account, region or resource id. A point whose name a rule
 * reads but whose labels it filters out (an idle CPU mode) is read, and bills nothing.
 *
 * Sample ids are deterministic: "otlp1-" + hash(mapping@version, account, resource, metric,
 * window end), so a retried request produces the same ids and is not billed twice.
 */
import { createHash } from 'node:crypto';
import type { SampleInput } from '../../schemas/sample.js';
import type { GroupReading, UsageWindow } from '../collectors/counters.js';
import { splitWindow } from '../collectors/counters.js';
import { applyMapping, type MappedResource, type TargetContext } from '../collectors/mappings/apply.js';
import { mappingRef, type Mapping } from '../collectors/mappings/index.js';
import { seriesKeyOf, type PromSample } from '../collectors/prometheus-text.js';
import { windowsToSamples, type WindowOwner } from '../collectors/samples.js';
import { AGGREGATION_TEMPORALITY, TOO_MANY_ATTRIBUTES, type OtlpRequest, type OtlpResource } from './decode.js';
import { otelHostMapping } from './host-mapping.js';
import { labelsOf, prometheusMetricName, type OtlpKind } from './names.js';
import { Rejections } from './rejections.js';
import { SeriesState } from './series-state.js';

const NS_PER_S = 1_000_000_000n;
/** The resource attribute naming a sample's region (required: the wire format needs one). */
export const REGION_ATTRIBUTE = 'cloud.region';

export interface Translation {
  samples: SampleInput[];
  /** Per sample, the data points behind it: counted as rejected if the acceptor refuses it. */
  pointsPerSample: number[];
  rejections: Rejections;
  /** What the counter rules noticed: for logs and metrics. */
  notes: { baselines: number; resets: number; stale: number };
}

export interface TranslatorOptions {
  mapping?: Mapping;
  state?: SeriesState;
  /** Longest delta window accepted, in seconds (the tracker's counterMaxGapS). */
  maxDeltaS?: number;
}

interface Bucket {
  /** Window end (a whole second) and, for a delta bucket, its start. */
  endMs: number;
  startMs?: number;
  samples: PromSample[];
  /** series key → how to name the point in a rejection */
  origin: Map<string, string>;
}

interface ResourceBuckets {
  cumulative: Map<number, Bucket>;
  delta: Map<string, Bucket>;
}

export class OtlpTranslator {
  readonly mapping: Mapping;
  readonly state: SeriesState;
  private readonly ref: string;
  private readonly knownSeries: Set<string>;
  private readonly maxDeltaMs: number;

  constructor(opts: TranslatorOptions = {}) {
    this.mapping = opts.mapping ?? otelHostMapping;
    this.state = opts.state ?? new SeriesState();
    this.ref = mappingRef(this.mapping);
    this.knownSeries = new Set(this.mapping.metrics.flatMap((r) => r.terms.map((t) => t.series)));
    this.maxDeltaMs = (opts.maxDeltaS ?? 7 * 86_400) * 1000;
  }

  translate(req: OtlpRequest, nowMs = Date.now()): Translation {
    const out: Translation = { samples: [], pointsPerSample: [], rejections: new Rejections(), notes: { baselines: 0, resets: 0, stale: 0 } };
    for (const resource of req.resources) this.resource(resource, nowMs, out);
    return out;
  }

  private resource(resource: OtlpResource, nowMs: number, out: Translation): void {
    const rej = out.rejections;
    const region = resource.attributes[REGION_ATTRIBUTE] ?? '';
    const buckets: ResourceBuckets = { cumulative: new Map(), delta: new Map() };
    let billable = 0;
    for (const scope of resource.scopes) {
      for (const metric of scope.metrics) {
        const d = metric.data;
        const what = `"${metric.name}"`;
        if (d.type === 'none') continue;
        if ('pointCount' in d) {
          rej.add(`${what}: ${d.type.replace('_', ' ')} data points are not billed (only sums and gauges are)`, d.pointCount);
          continue;
        }
        if (resource.problem) {
          rej.add(resource.problem, d.points.length);
          continue;
        }
        let kind: OtlpKind;
        let delta = false;
        if (d.type === 'gauge') kind = 'gauge';
        else if (d.temporality === AGGREGATION_TEMPORALITY.unspecified) {
          rej.add(`${what}: a sum without an aggregation temporality cannot be read`, d.points.length);
          continue;
        } else if (!d.monotonic) {
          if (d.temporality === AGGREGATION_TEMPORALITY.delta) {
            rej.add(`${what}: a non-monotonic delta sum is a change, not a level; export it with cumulative temporality`, d.points.length);
            continue;
          }
          kind = 'non_monotonic_sum';
        } else {
          kind = 'monotonic_sum';
          delta = d.temporality === AGGREGATION_TEMPORALITY.delta;
        }
        const name = prometheusMetricName(metric.name, metric.unit, kind);
        if (!this.knownSeries.has(name)) {
          rej.add(`${what} (as ${name}): no rule of mapping ${this.ref} bills it`, d.points.length);
          continue;
        }
        if (region === '') {
          rej.add(`the resource has no ${REGION_ATTRIBUTE} attribute: a sample needs a region`, d.points.length);
          continue;
        }
        for (const point of d.points) {
          if (point.value === undefined) continue; // no recorded value: a staleness marker, nothing to bill
          if (TOO_MANY_ATTRIBUTES in point.attributes) {
            rej.add(`${what}: a data point has more than 128 attributes`, 1);
            continue;
          }
          if (point.inexactInt) {
            rej.add(`${what}: an integer value beyond 2^53 cannot be billed exactly`, 1);
            continue;
          }
          if (point.timeNs <= 0n) {
            rej.add(`${what}: a data point without time_unix_nano`, 1);
            continue;
          }
          const endMs = Number(point.timeNs / NS_PER_S) * 1000;
          const extra: Record<string, string> = { otel_scope_name: scope.name };
          let bucket: Bucket;
          if (delta) {
            const startMs = Number(point.startNs / NS_PER_S) * 1000;
            if (point.startNs <= 0n || startMs >= endMs) {
              rej.add(`${what}: a delta point needs start_time_unix_nano at least a whole second before time_unix_nano`, 1);
              continue;
            }
            if (endMs - startMs > this.maxDeltaMs) {
              rej.add(`${what}: a delta window longer than ${this.maxDeltaMs / 86_400_000} days is not spread over days it cannot place`, 1);
              continue;
            }
            const key = `${startMs}:${endMs}`;
            bucket = buckets.delta.get(key) ?? newBucket(buckets.delta, key, endMs, startMs);
          } else {
            // A new start time is a new series: counted from zero, the counter reset rule.
            if (kind === 'monotonic_sum') extra.otel_start_time_unix_nano = point.startNs.toString();
            bucket = buckets.cumulative.get(endMs) ?? newBucket(buckets.cumulative, endMs, endMs);
          }
          const labels = labelsOf(point.attributes, extra);
          const key = seriesKeyOf(name, labels);
          if (bucket.origin.has(key)) {
            rej.add(`${what}: a repeated data point (same attributes and time) was ignored`, 1);
            continue;
          }
          bucket.origin.set(key, what);
          bucket.samples.push({ name, labels, value: point.value, line: 0 });
          billable++;
        }
      }
    }
    if (billable === 0) return;

    const target: TargetContext = { id: 'otlp', region, labels: labelsOf(resource.attributes), attributes: {} };
    const scope = scopeKeyOf(resource.attributes);
    const cumulativeSeries = [...buckets.cumulative.values()].reduce((n, b) => n + b.samples.length, 0);
    if (cumulativeSeries > this.state.maxSeriesPerScope) {
      rej.add(`the resource sent ${cumulativeSeries} cumulative and gauge series; at most ${this.state.maxSeriesPerScope} are tracked per resource`, cumulativeSeries);
      buckets.cumulative.clear();
    }

    const windows = new Map<string, { window: UsageWindow; owner: WindowOwner; points: number }>();
    const addWindow = (w: UsageWindow, owner: WindowOwner, points: number) => {
      const k = `${w.key}\u0000${w.endMs}`;
      const prev = windows.get(k);
      if (!prev) windows.set(k, { window: { ...w }, owner, points });
      else {
        prev.window.units += w.units;
        prev.window.startMs = Math.min(prev.window.startMs, w.startMs);
        prev.points += points;
      }
    };

    // Cumulative and gauge readings, oldest slot first, through the counters' tracker.
    if (buckets.cumulative.size > 0) {
      const tracker = this.state.tracker(scope, nowMs);
      for (const bucket of [...buckets.cumulative.values()].sort((a, b) => a.endMs - b.endMs)) {
        const mapped = this.map(bucket, target, rej);
        if (!mapped) continue;
        const readings: GroupReading[] = mapped.flatMap((r) => r.readings);
        const owners = ownersOf(mapped);
        const result = tracker.observe(scope, bucket.endMs, readings);
        const seriesOf = new Map(readings.map((r) => [r.key, r.series.length]));
        for (const e of result.events) {
          if (e.type === 'baseline') out.notes.baselines++;
          else if (e.type === 'reset') out.notes.resets++;
          else if (e.type === 'stale') out.notes.stale++;
          else if (e.type === 'invalid') {
            const origin = e.series ? bucket.origin.get(stripTerm(e.series)) : undefined;
            rej.add(`${origin ?? owners.get(e.key)?.metric ?? 'a metric'}: ${e.reason}`, e.series ? 1 : (seriesOf.get(e.key) ?? 1));
          }
        }
        for (const w of result.windows) addWindow(w, owners.get(w.key)!, seriesOf.get(w.key) ?? 0);
      }
      this.state.settle(scope);
    }

    // Delta readings: each point's own window, summed per group.
    for (const bucket of buckets.delta.values()) {
      const mapped = this.map(bucket, target, rej);
      if (!mapped) continue;
      const owners = ownersOf(mapped);
      for (const r of mapped.flatMap((m) => m.readings)) {
        let units = 0n;
        let points = 0;
        for (const s of r.series) {
          if (!Number.isFinite(s.value) || s.value < 0) {
            rej.add(`${bucket.origin.get(stripTerm(s.id)) ?? r.metric}: counter value ${s.value} is not a finite number ≥ 0`, 1);
            continue;
          }
          units += BigInt(Math.round(s.value * r.scale));
          points++;
        }
        if (points === 0) continue;
        const start = bucket.startMs!;
        const pieces = splitWindow(start, bucket.endMs);
        const span = BigInt(bucket.endMs - start);
        let given = 0n;
        pieces.forEach(([a, b], i) => {
          const share = i === pieces.length - 1 ? units - given : (units * BigInt(b - a)) / span;
          given += share;
          addWindow({ key: r.key, startMs: a, endMs: b, units: share, scale: r.scale }, owners.get(r.key)!, points);
        });
      }
    }

    const list = [...windows.values()];
    const owners = new Map(list.map((w) => [w.window.key, w.owner]));
    const { samples, unrepresentable } = windowsToSamples({ mappingRef: this.ref, targetId: 'otlp' }, owners, list.map((w) => w.window));
    rej.add('a window whose usage is beyond 2^53 units cannot be written exactly', unrepresentable);
    const kept = list.filter((w) => w.window.units <= BigInt(Number.MAX_SAFE_INTEGER));
    samples.forEach((s, i) => {
      const owner = kept[i]!.owner;
      s.id = otlpSampleId(this.ref, owner.identity.account_id, owner.identity.resource_id, owner.metric, kept[i]!.window.endMs);
      out.samples.push(s);
      out.pointsPerSample.push(kept[i]!.points);
    });
  }

  /** Applies the mapping to one bucket; a Resource it cannot identify rejects the bucket's points. */
  private map(bucket: Bucket, target: TargetContext, rej: Rejections): MappedResource[] | undefined {
    const result = applyMapping(this.mapping, target, [{ name: 'otlp', type: 'untyped', samples: bucket.samples }]);
    for (const u of result.unmapped) {
      rej.add(`the resource cannot be billed: ${u.reason} (OTLP resource attributes are read as target labels, "." as "_")`, bucket.samples.length);
    }
    return result.resources.length > 0 ? result.resources : undefined;
  }
}

function newBucket<K>(map: Map<K, Bucket>, key: K, endMs: number, startMs?: number): Bucket {
  const b: Bucket = { endMs, ...(startMs === undefined ? {} : { startMs }), samples: [], origin: new Map() };
  map.set(key, b);
  return b;
}

function ownersOf(mapped: readonly MappedResource[]): Map<string, WindowOwner> {
  const owners = new Map<string, WindowOwner>();
  for (const m of mapped) for (const r of m.readings) owners.set(r.key, { identity: m.identity, metric: r.metric });
  return owners;
}

/** apply.ts names a reading's series `<term index>:<series key>`. */
function stripTerm(seriesId: string): string {
  return seriesId.slice(seriesId.indexOf(':') + 1);
}

/** One Resource's state scope: every attribute, so two processes on one host are two scopes. */
export function scopeKeyOf(attributes: Readonly<Record<string, string>>): string {
  const sorted = Object.keys(attributes)
    .sort()
    .map((k) => [k, attributes[k]]);
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 32);
}

export function otlpSampleId(ref: string, account: string, resource: string, metric: string, endMs: number): string {
  const digest = createHash('sha256').update(JSON.stringify(['otlp', ref, account, resource, metric, endMs])).digest('hex');
  // "otlp1": OTLP ingest, id scheme 1; 160 bits of the hash.
  return `otlp1-${digest.slice(0, 40)}`;
}
