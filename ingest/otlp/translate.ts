/**
 * OTLP metrics → wire samples, by the pull collectors' own rules. This module ties the
 * steps together; each has its own file:
 *
 *   read-points.ts (a Resource's points into buckets; every refusal that needs no mapping)
 *   → mappings/apply.ts (which series bill what, for whom; names.ts made them Prometheus names)
 *   → cumulative sums and gauges: the shared state (shared-state.ts, one Redis round trip
 *     per request) and cumulative.ts (the counters' UsageTracker rules);
 *     delta sums: windows.ts (each point's own window, cut at UTC hours), no state
 *   → samples.ts windowsToSamples with ids.ts's deterministic ids → the acceptor.
 *
 * - **Gauges** (and non-monotonic cumulative sums, which are levels) are held like a scraped
 *   gauge: a level over (previous reading, this one].
 * - **Cumulative monotonic sums** are per-series increases like a scraped counter: the
 *   first reading of a group a baseline (what was billed before is unknown), a lower value
 *   a reset. `start_time_unix_nano` is kept with each series: a new start time later than
 *   the stored reading is a reset, the usage since the restart being the new value.
 * - The state is shared by every ingest process and moves on only to a later slot, so
 *   exports split across processes (or arriving late, or retried) bill each interval once.
 *   Two readings in one second are one slot; the later one is `stale` and its usage lands
 *   in the next window.
 * - **Delta monotonic sums** are summed per group like the counter terms of a mapping.
 *
 * Everything not billed is counted in `rejections` with a reason: histograms, summaries,
 * exponential histograms, metrics no rule reads, NaN/±Inf/negative values, points without a
 * time, a Resource without an account, region or resource id. A point whose name a rule
 * reads but whose labels it filters out (an idle CPU mode) is read, and bills nothing.
 *
 * Sample ids are deterministic (ids.ts), so a retried request produces the same ids and is
 * not billed twice.
 */
import type { SampleInput } from '../../schemas/sample.js';
import type { TrackerOptions } from '../collectors/counters.js';
import { applyMapping, type MappedReading, type MappedResource, type TargetContext } from '../collectors/mappings/apply.js';
import { mappingRef, type Mapping } from '../collectors/mappings/index.js';
import { windowsToSamples, type WindowOwner } from '../collectors/samples.js';
import { billStep, validReading, type PlannedSeries } from './cumulative.js';
import type { OtlpRequest, OtlpResource } from './decode.js';
import { otelHostMapping } from './host-mapping.js';
import { otlpSampleId, scopeKeyOf } from './ids.js';
import { labelsOf } from './names.js';
import { DAY_MS, readResourcePoints, type Bucket, type ResourceBuckets } from './read-points.js';
import { Rejections } from './rejections.js';
import type { SharedSeriesState, StateStep } from './shared-state.js';
import { addDeltaWindows, addWindow, type WindowMap } from './windows.js';

export { otlpSampleId, scopeKeyOf } from './ids.js';
export { REGION_ATTRIBUTE } from './read-points.js';

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
    if (steps.length > 0) await this.advance(steps, nowMs, out.notes);
    for (const plan of plans) this.emit(plan, out);
    return out;
  }

  /** Reads a Resource's points, queues its cumulative and gauge steps, and bills its delta points. */
  private plan(resource: OtlpResource, nowMs: number, rej: Rejections, steps: PlannedStep[]): ResourcePlan | undefined {
    const rules = { knownSeries: this.knownSeries, mappingRef: this.ref, maxDeltaMs: this.maxDeltaMs, maxAgeMs: this.maxAgeMs, nowMs };
    const { region, buckets, billable } = readResourcePoints(resource, rules, rej);
    if (billable === 0) return undefined;

    const plan: ResourcePlan = { windows: new Map() };
    const target: TargetContext = { id: 'otlp', region, labels: labelsOf(resource.attributes), attributes: {} };
    const scope = scopeKeyOf(resource.attributes);
    this.limitSeries(buckets, rej);
    // Cumulative and gauge readings, oldest slot first: queued for the shared state.
    for (const bucket of [...buckets.cumulative.values()].sort((a, b) => a.endMs - b.endMs)) {
      this.queueSteps(bucket, plan, target, scope, rej, steps);
    }
    // Delta readings: each point's own window, summed per group.
    for (const bucket of buckets.delta.values()) this.billDelta(bucket, plan, target, rej);
    return plan;
  }

  /** More cumulative and gauge series than one Resource may track: all of them are refused. */
  private limitSeries(buckets: ResourceBuckets, rej: Rejections): void {
    const cumulativeSeries = [...buckets.cumulative.values()].reduce((n, b) => n + b.samples.length, 0);
    if (cumulativeSeries > this.maxSeriesPerScope) {
      rej.add(`the resource sent ${cumulativeSeries} cumulative and gauge series; at most ${this.maxSeriesPerScope} are tracked per resource`, cumulativeSeries, 'series_limit');
      buckets.cumulative.clear();
    }
  }

  /** One slot's cumulative and gauge readings, each valid group a step for the shared state. */
  private queueSteps(bucket: Bucket, plan: ResourcePlan, target: TargetContext, scope: string, rej: Rejections, steps: PlannedStep[]): void {
    const mapped = this.map(bucket, target, rej);
    if (!mapped) return;
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

  /** One delta window's readings: each group's usage, summed over its valid points, billed at once. */
  private billDelta(bucket: Bucket, plan: ResourcePlan, target: TargetContext, rej: Rejections): void {
    const mapped = this.map(bucket, target, rej);
    if (!mapped) return;
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
      addDeltaWindows(plan.windows, { key: r.key, startMs: bucket.startMs!, endMs: bucket.endMs, units, scale: r.scale }, owners.get(r.key)!, points);
    }
  }

  /** One atomic state update for every queued step, then each "next" step billed into its plan. */
  private async advance(steps: PlannedStep[], nowMs: number, notes: Translation['notes']): Promise<void> {
    const { outcomes } = await this.state.advance(steps.map((s) => s.state), nowMs);
    steps.forEach((step, i) => {
      const outcome = outcomes[i]!;
      if (outcome.kind === 'stale' || outcome.kind === 'below_floor') notes.stale++;
      else if (outcome.kind === 'baseline') notes.baselines++;
      else {
        const bill = billStep(step.reading, step.series, step.state.slotMs, outcome, this.trackerOptions);
        notes.resets += bill.restarts + bill.events.filter((e) => e.type === 'reset').length;
        for (const w of bill.windows) addWindow(step.plan.windows, w, step.owner, step.reading.series.length);
      }
    });
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

function ownersOf(mapped: readonly MappedResource[]): Map<string, WindowOwner> {
  const owners = new Map<string, WindowOwner>();
  for (const m of mapped) for (const r of m.readings) owners.set(r.key, { identity: m.identity, metric: r.metric });
  return owners;
}

/** apply.ts names a reading's series `<term index>:<series key>`. */
function stripTerm(seriesId: string): string {
  return seriesId.slice(seriesId.indexOf(':') + 1);
}
