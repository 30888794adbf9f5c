/**
 * OTLP metrics → wire samples, by the pull collectors' own rules:
 *
 *   names.ts (OTLP → Prometheus names) → mappings/apply.ts (which series bill what, for whom)
 *   → cumulative sums and gauges: the shared state (shared-state.ts, one Redis round trip
 *     per request) and cumulative.ts (the counters' UsageTracker rules), or the delta path below
 *   → samples.ts windowsToSamples → the acceptor.
 *
 * - **Gauges** (and non-monotonic cumulative sums, which are levels) are held like a scraped
 *   gauge: a level over (previous reading, this one].
 * - **Cumulative monotonic sums** are per-series increases like a scraped counter: the
 *   first reading of a group a baseline (what was billed before is unknown), a lower value
 *   a reset. `start_time_unix_nano` is kept with each series: a new start time later than
 *   the stored reading is a reset, the usage since the restart being the new value.
 * - The state is shared by every ingest process and moves on only to a later slot, so
 *   exports split across processes (or arriving late, or retried) bill each interval once.
 *   Points it could not place safely are refused before they reach it: more than 5 minutes
 *   in the future (one would hold every later export back as stale), older than the state
 *   is kept (`maxAgeMs`), a start time after the point's time.
 * - **Delta monotonic sums** are used as they are: each point's (start, time] is a window,
 *   its value the usage in it, summed per group like the counter terms of a mapping.
 *   Windows longer than an hour are cut at UTC hours with the counter's exact proportional
 *   share; longer than the counter's maximum gap (7 days) they are refused, as a scraped
 *   counter's gap that long is re-baselined rather than spread. No state.
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
import { LIMITS, type SampleInput } from '../../schemas/sample.js';
import type { TrackerOptions, UsageWindow } from '../collectors/counters.js';
import { splitWindow } from '../collectors/counters.js';
import { applyMapping, type MappedReading, type MappedResource, type TargetContext } from '../collectors/mappings/apply.js';
import { mappingRef, type Mapping } from '../collectors/mappings/index.js';
import { seriesKeyOf, type PromSample } from '../collectors/prometheus-text.js';
import { windowsToSamples, type WindowOwner } from '../collectors/samples.js';
import { billStep, validReading, type PlannedSeries } from './cumulative.js';
import { AGGREGATION_TEMPORALITY, TOO_MANY_ATTRIBUTES, type OtlpRequest, type OtlpResource } from './decode.js';
import { otelHostMapping } from './host-mapping.js';
import { labelsOf, prometheusMetricName, type OtlpKind } from './names.js';
import { Rejections } from './rejections.js';
import type { SharedSeriesState, StateStep } from './shared-state.js';

const NS_PER_S = 1_000_000_000n;
const DAY_MS = 86_400_000;
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
  /** The cumulative and gauge state, shared by every ingest process. */
  state: SharedSeriesState;
  mapping?: Mapping;
  /** Longest delta window accepted, in seconds (the tracker's counterMaxGapS). */
  maxDeltaS?: number;
  /** Cumulative and gauge series one request may carry per Resource (default 5,000). */
  maxSeriesPerScope?: number;
  tracker?: TrackerOptions;
}

interface Bucket {
  /** Window end (a whole second) and, for a delta bucket, its start. */
  endMs: number;
  startMs?: number;
  samples: PromSample[];
  /** series key → how to name the point in a rejection */
  origin: Map<string, string>;
  /** series key → the point's start and exact time (cumulative buckets) */
  times: Map<string, { startNs: bigint; timeNs: bigint }>;
}

interface ResourceBuckets {
  cumulative: Map<number, Bucket>;
  delta: Map<string, Bucket>;
}

type WindowMap = Map<string, { window: UsageWindow; owner: WindowOwner; points: number }>;

/** One Resource's translation between planning and the samples. */
interface ResourcePlan {
  windows: WindowMap;
}

/** One group's cumulative or gauge reading, waiting for the shared state's answer. */
interface PlannedStep {
  plan: ResourcePlan;
  reading: MappedReading;
  owner: WindowOwner;
  series: PlannedSeries[];
  state: StateStep;
}

export class OtlpTranslator {
  readonly mapping: Mapping;
  readonly state: SharedSeriesState;
  readonly maxSeriesPerScope: number;
  /** Oldest cumulative or gauge point taken: state idle longer is dropped (a day of clock skew kept apart). */
  readonly maxAgeMs: number;
  private readonly ref: string;
  private readonly knownSeries: Set<string>;
  private readonly maxDeltaMs: number;
  private readonly trackerOptions: TrackerOptions;

  constructor(opts: TranslatorOptions) {
    this.mapping = opts.mapping ?? otelHostMapping;
    this.state = opts.state;
    this.maxSeriesPerScope = opts.maxSeriesPerScope ?? 5_000;
    this.maxAgeMs = opts.state.limits.idleMs - DAY_MS;
    if (this.maxAgeMs <= 0) throw new RangeError('the shared state must be kept idle for more than a day');
    this.ref = mappingRef(this.mapping);
    this.knownSeries = new Set(this.mapping.metrics.flatMap((r) => r.terms.map((t) => t.series)));
    this.maxDeltaMs = (opts.maxDeltaS ?? 7 * 86_400) * 1000;
    this.trackerOptions = opts.tracker ?? {};
  }

  /**
   * Order: plan every Resource (pure) → one atomic state update for every cumulative and
   * gauge group of the request → bill each group's step from its previous state → samples.
   * The state has moved on once this resolves: samples it returns exist nowhere else, so
   * the caller must deliver or hold them (pending.ts).
   */
  async translate(req: OtlpRequest, nowMs = Date.now()): Promise<Translation> {
    const out: Translation = { samples: [], pointsPerSample: [], rejections: new Rejections(), notes: { baselines: 0, resets: 0, stale: 0 } };
    const plans: ResourcePlan[] = [];
    const steps: PlannedStep[] = [];
    for (const resource of req.resources) {
      const plan = this.plan(resource, nowMs, out.rejections, steps);
      if (plan) plans.push(plan);
    }
    if (steps.length > 0) {
      const { outcomes } = await this.state.advance(steps.map((s) => s.state), nowMs);
      steps.forEach((step, i) => {
        const outcome = outcomes[i]!;
        if (outcome.kind === 'stale' || outcome.kind === 'below_floor') out.notes.stale++;
        else if (outcome.kind === 'baseline') out.notes.baselines++;
        else {
          const bill = billStep(step.reading, step.series, step.state.slotMs, outcome, this.trackerOptions);
          out.notes.resets += bill.restarts + bill.events.filter((e) => e.type === 'reset').length;
          for (const w of bill.windows) addWindow(step.plan.windows, w, step.owner, step.reading.series.length);
        }
      });
    }
    for (const plan of plans) this.emit(plan, out);
    return out;
  }

  /** Buckets a Resource's points, bills its delta points, and queues its cumulative steps. */
  private plan(resource: OtlpResource, nowMs: number, rej: Rejections, steps: PlannedStep[]): ResourcePlan | undefined {
    const region = resource.attributes[REGION_ATTRIBUTE] ?? '';
    const buckets: ResourceBuckets = { cumulative: new Map(), delta: new Map() };
    let billable = 0;
    for (const scope of resource.scopes) {
      for (const metric of scope.metrics) {
        const d = metric.data;
        const what = `"${metric.name}"`;
        if (d.type === 'none') continue;
        if ('pointCount' in d) {
          rej.add(`${what}: ${d.type.replace('_', ' ')} data points are not billed (only sums and gauges are)`, d.pointCount, 'unsupported_type');
          continue;
        }
        if (resource.problem) {
          rej.add(resource.problem, d.points.length, 'resource');
          continue;
        }
        let kind: OtlpKind;
        let delta = false;
        if (d.type === 'gauge') kind = 'gauge';
        else if (d.temporality === AGGREGATION_TEMPORALITY.unspecified) {
          rej.add(`${what}: a sum without an aggregation temporality cannot be read`, d.points.length, 'unsupported_type');
          continue;
        } else if (!d.monotonic) {
          if (d.temporality === AGGREGATION_TEMPORALITY.delta) {
            rej.add(`${what}: a non-monotonic delta sum is a change, not a level; export it with cumulative temporality`, d.points.length, 'unsupported_type');
            continue;
          }
          kind = 'non_monotonic_sum';
        } else {
          kind = 'monotonic_sum';
          delta = d.temporality === AGGREGATION_TEMPORALITY.delta;
        }
        const name = prometheusMetricName(metric.name, metric.unit, kind);
        if (!this.knownSeries.has(name)) {
          rej.add(`${what} (as ${name}): no rule of mapping ${this.ref} bills it`, d.points.length, 'unmapped');
          continue;
        }
        if (region === '') {
          rej.add(`the resource has no ${REGION_ATTRIBUTE} attribute: a sample needs a region`, d.points.length, 'resource');
          continue;
        }
        for (const point of d.points) {
          if (point.value === undefined) continue; // no recorded value: a staleness marker, nothing to bill
          if (TOO_MANY_ATTRIBUTES in point.attributes) {
            rej.add(`${what}: a data point has more than 128 attributes`, 1, 'invalid_point');
            continue;
          }
          if (point.inexactInt) {
            rej.add(`${what}: an integer value beyond 2^53 cannot be billed exactly`, 1, 'invalid_point');
            continue;
          }
          if (point.timeNs <= 0n) {
            rej.add(`${what}: a data point without time_unix_nano`, 1, 'invalid_point');
            continue;
          }
          const endMs = Number(point.timeNs / NS_PER_S) * 1000;
          const extra: Record<string, string> = { otel_scope_name: scope.name };
          let bucket: Bucket;
          if (delta) {
            const startMs = Number(point.startNs / NS_PER_S) * 1000;
            if (point.startNs <= 0n || startMs >= endMs) {
              rej.add(`${what}: a delta point needs start_time_unix_nano at least a whole second before time_unix_nano`, 1, 'invalid_point');
              continue;
            }
            if (endMs - startMs > this.maxDeltaMs) {
              rej.add(`${what}: a delta window longer than ${this.maxDeltaMs / 86_400_000} days is not spread over days it cannot place`, 1, 'invalid_point');
              continue;
            }
            const key = `${startMs}:${endMs}`;
            bucket = buckets.delta.get(key) ?? newBucket(buckets.delta, key, endMs, startMs);
          } else {
            // Refused before the shared state sees them: a future time would hold every
            // later export back as stale; one older than the state is kept could be a
            // baseline behind readings already billed.
            if (endMs > nowMs + LIMITS.maxFutureMs) {
              rej.add(`${what}: a data point's time is more than ${LIMITS.maxFutureMs / 60_000} minutes in the future`, 1, 'out_of_time_range');
              continue;
            }
            if (endMs < nowMs - this.maxAgeMs) {
              rej.add(`${what}: a cumulative or gauge data point older than ${describeAge(this.maxAgeMs)} is not billed (its series state is not kept that long)`, 1, 'out_of_time_range');
              continue;
            }
            if (kind === 'monotonic_sum' && point.startNs > point.timeNs) {
              rej.add(`${what}: a cumulative point's start_time_unix_nano is after its time_unix_nano`, 1, 'invalid_point');
              continue;
            }
            bucket = buckets.cumulative.get(endMs) ?? newBucket(buckets.cumulative, endMs, endMs);
          }
          const labels = labelsOf(point.attributes, extra);
          const key = seriesKeyOf(name, labels);
          if (bucket.origin.has(key)) {
            rej.add(`${what}: a repeated data point (same attributes and time) was ignored`, 1, 'duplicate');
            continue;
          }
          bucket.origin.set(key, what);
          if (!delta) bucket.times.set(key, { startNs: kind === 'monotonic_sum' ? point.startNs : 0n, timeNs: point.timeNs });
          bucket.samples.push({ name, labels, value: point.value, line: 0 });
          billable++;
        }
      }
    }
    if (billable === 0) return undefined;

    const plan: ResourcePlan = { windows: new Map() };
    const target: TargetContext = { id: 'otlp', region, labels: labelsOf(resource.attributes), attributes: {} };
    const scope = scopeKeyOf(resource.attributes);
    const cumulativeSeries = [...buckets.cumulative.values()].reduce((n, b) => n + b.samples.length, 0);
    if (cumulativeSeries > this.maxSeriesPerScope) {
      rej.add(`the resource sent ${cumulativeSeries} cumulative and gauge series; at most ${this.maxSeriesPerScope} are tracked per resource`, cumulativeSeries, 'series_limit');
      buckets.cumulative.clear();
    }

    // Cumulative and gauge readings, oldest slot first: queued for the shared state.
    for (const bucket of [...buckets.cumulative.values()].sort((a, b) => a.endMs - b.endMs)) {
      const mapped = this.map(bucket, target, rej);
      if (!mapped) continue;
      const owners = ownersOf(mapped);
      for (const reading of mapped.flatMap((r) => r.readings)) {
        const checked = validReading(reading);
        if ('invalid' in checked) {
          for (const e of checked.invalid) {
            const origin = e.series ? bucket.origin.get(stripTerm(e.series)) : undefined;
            rej.add(`${origin ?? reading.metric}: ${e.reason}`, e.series ? 1 : reading.series.length, 'invalid_point');
          }
        }
        const valid = checked.ok;
        if (!valid) continue;
        const series = valid.series.map((s) => ({ id: s.id, ...bucket.times.get(stripTerm(s.id))! }));
        const timeNs = series.reduce((t, s) => (s.timeNs > t ? s.timeNs : t), 0n);
        steps.push({
          plan,
          reading: { ...valid, metric: reading.metric },
          owner: owners.get(reading.key)!,
          series,
          state: {
            scope,
            group: reading.key,
            slotMs: bucket.endMs,
            timeNs,
            series: valid.kind === 'counter' ? valid.series.map((s, i) => ({ id: s.id, record: { startNs: series[i]!.startNs, timeNs: series[i]!.timeNs, value: s.value } })) : [],
          },
        });
      }
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
            rej.add(`${bucket.origin.get(stripTerm(s.id)) ?? r.metric}: counter value ${s.value} is not a finite number ≥ 0`, 1, 'invalid_point');
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
          addWindow(plan.windows, { key: r.key, startMs: a, endMs: b, units: share, scale: r.scale }, owners.get(r.key)!, points);
        });
      }
    }
    return plan;
  }

  /** A Resource's windows as samples with deterministic ids. */
  private emit(plan: ResourcePlan, out: Translation): void {
    const list = [...plan.windows.values()];
    if (list.length === 0) return;
    const owners = new Map(list.map((w) => [w.window.key, w.owner]));
    const { samples, unrepresentable } = windowsToSamples({ mappingRef: this.ref, targetId: 'otlp' }, owners, list.map((w) => w.window));
    out.rejections.add('a window whose usage is beyond 2^53 units cannot be written exactly', unrepresentable, 'invalid_point');
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
      rej.add(`the resource cannot be billed: ${u.reason} (OTLP resource attributes are read as target labels, "." as "_")`, bucket.samples.length, 'resource');
    }
    return result.resources.length > 0 ? result.resources : undefined;
  }
}

function describeAge(ms: number): string {
  return ms % DAY_MS === 0 ? `${ms / DAY_MS} days` : `${Math.round(ms / 60_000)} minutes`;
}

/** Windows of one group ending at the same instant are one sample: their usage adds up. */
function addWindow(windows: WindowMap, w: UsageWindow, owner: WindowOwner, points: number): void {
  const k = `${w.key}\u0000${w.endMs}`;
  const prev = windows.get(k);
  if (!prev) windows.set(k, { window: { ...w }, owner, points });
  else {
    prev.window.units += w.units;
    prev.window.startMs = Math.min(prev.window.startMs, w.startMs);
    prev.points += points;
  }
}

function newBucket<K>(map: Map<K, Bucket>, key: K, endMs: number, startMs?: number): Bucket {
  const b: Bucket = { endMs, ...(startMs === undefined ? {} : { startMs }), samples: [], origin: new Map(), times: new Map() };
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
