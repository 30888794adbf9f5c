/**
 * The declared, versioned shape of a mapping: which exporter series become which usage
 * metric, for which resource, owned by which account. Mappings are data, not code, so an
 * operator can declare one for another exporter in the targets file and it is validated
 * exactly like the shipped ones.
 *
 * Bump `version` whenever a change alters what is billed (a filter, a term, a sign): the
 * version is part of every sample id, so windows produced under the old and the new rules
 * are never confused for one another.
 */
import { z } from 'zod';
import { METRICS, RESOURCE_TYPES, type Metric, type ResourceType } from '../../../schemas/sample.js';

/** Where an identity field or attribute comes from; a list is tried in order, first non-empty wins. */
export type ValueSource =
  /** A label set on the target in the targets file (e.g. the account that owns a host). */
  | { from: 'target_label'; name: string }
  /** A label of the resource's info series (e.g. libvirt's OpenStack metadata). */
  | { from: 'info_label'; name: string }
  /** The value of `resource.key_label` itself (e.g. the libvirt domain name). */
  | { from: 'key' }
  /** The target's id from the targets file. */
  | { from: 'target_id' }
  | { from: 'const'; value: string };

/** PromQL-style label matcher; regular expressions are anchored at both ends, as in PromQL. */
export interface LabelMatcher {
  label: string;
  op: '=' | '!=' | '=~' | '!~';
  value: string;
}

export interface SeriesTerm {
  /** Sample name as exposed, e.g. `node_cpu_seconds_total`. */
  series: string;
  /** All must match; a missing label matches as the empty string (PromQL semantics). */
  where?: LabelMatcher[];
  /** Gauges only: −1 subtracts the term (MemTotal − MemAvailable). */
  sign?: 1 | -1;
  /** Keep one series per distinct value of these labels (a device mounted twice counts once). */
  distinct_by?: string[];
}

export interface MetricRule {
  metric: Metric;
  /** counter: per-series deltas summed; gauge: current values summed, held over the window. */
  kind: 'counter' | 'gauge';
  terms: SeriesTerm[];
}

export interface Mapping {
  name: string;
  version: number;
  description?: string;
  resource: {
    /** Default resource type; a target may override it. */
    type: ResourceType;
    /** Label naming the resource within one scrape (libvirt: `domain`); absent: the target is one resource. */
    key_label?: string;
    /** A series carrying per-resource metadata labels, joined on `key_label`; its value is ignored. */
    info_series?: string;
    /**
     * Gauges of a resource are billed only while this series' value is in `values`; otherwise
     * they read 0 (a shut-off VM keeps its configured memory in the exporter but holds none).
     */
    active_when?: { series: string; values: number[] };
  };
  account_id: ValueSource[];
  resource_id: ValueSource[];
  /** Wire-format attributes (low-cardinality: instance_type, plan, zone). */
  attributes?: Record<string, ValueSource[]>;
  metrics: MetricRule[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

const valueSourceSchema = z.discriminatedUnion('from', [
  z.object({ from: z.literal('target_label'), name: z.string().regex(LABEL_NAME) }).strict(),
  z.object({ from: z.literal('info_label'), name: z.string().regex(LABEL_NAME) }).strict(),
  z.object({ from: z.literal('key') }).strict(),
  z.object({ from: z.literal('target_id') }).strict(),
  z.object({ from: z.literal('const'), value: z.string().min(1) }).strict(),
]) satisfies z.ZodType<ValueSource>;

const sourceList = z.array(valueSourceSchema).min(1, 'give at least one source');

const labelMatcherSchema = z
  .object({
    label: z.string().regex(LABEL_NAME, 'label must be a Prometheus label name'),
    op: z.enum(['=', '!=', '=~', '!~']),
    value: z.string().max(1024),
  })
  .strict()
  .superRefine((m, ctx) => {
    if (m.op === '=~' || m.op === '!~') {
      try {
        new RegExp(`^(?:${m.value})$`, 'u');
      } catch {
        ctx.addIssue({ code: 'custom', path: ['value'], message: `not a valid regular expression` });
      }
    }
  }) satisfies z.ZodType<LabelMatcher>;

const seriesTermSchema = z
  .object({
    series: z.string().regex(METRIC_NAME, 'series must be a Prometheus metric name'),
    where: z.array(labelMatcherSchema).optional(),
    sign: z.union([z.literal(1), z.literal(-1)]).optional(),
    distinct_by: z.array(z.string().regex(LABEL_NAME)).min(1).optional(),
  })
  .strict() satisfies z.ZodType<SeriesTerm>;

const metricRuleSchema = z
  .object({
    metric: z.enum(METRICS),
    kind: z.enum(['counter', 'gauge']),
    terms: z.array(seriesTermSchema).min(1),
  })
  .strict()
  .superRefine((r, ctx) => {
    if (r.kind === 'counter' && r.terms.some((t) => t.sign === -1)) {
      // A difference of counters is not a counter: resets could not be told apart.
      ctx.addIssue({ code: 'custom', path: ['terms'], message: 'counter terms cannot be subtracted (sign −1)' });
    }
  }) satisfies z.ZodType<MetricRule>;

export const mappingSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, 'name must be lower-case letters, digits, _ or -'),
    version: z.number().int().min(1).max(1_000_000),
    description: z.string().max(2000).optional(),
    resource: z
      .object({
        type: z.enum(RESOURCE_TYPES),
        key_label: z.string().regex(LABEL_NAME).optional(),
        info_series: z.string().regex(METRIC_NAME).optional(),
        active_when: z
          .object({ series: z.string().regex(METRIC_NAME), values: z.array(z.number()).min(1) })
          .strict()
          .optional(),
      })
      .strict(),
    account_id: sourceList,
    resource_id: sourceList,
    attributes: z.record(z.string().regex(/^[a-z_][a-z0-9_]*$/, 'attribute names must be snake_case'), sourceList).optional(),
    metrics: z.array(metricRuleSchema).min(1),
  })
  .strict()
  .superRefine((m, ctx) => {
    const seen = new Set<Metric>();
    m.metrics.forEach((r, i) => {
      // Two rules for one metric would emit two samples with the same natural key.
      if (seen.has(r.metric)) ctx.addIssue({ code: 'custom', path: ['metrics', i, 'metric'], message: `metric "${r.metric}" is mapped twice` });
      seen.add(r.metric);
    });
    const sources = [
      ...m.account_id.map((s) => ({ s, path: ['account_id'] })),
      ...m.resource_id.map((s) => ({ s, path: ['resource_id'] })),
      ...Object.entries(m.attributes ?? {}).flatMap(([k, list]) => list.map((s) => ({ s, path: ['attributes', k] }))),
    ];
    for (const { s, path } of sources) {
      if (s.from === 'info_label' && !m.resource.info_series) {
        ctx.addIssue({ code: 'custom', path, message: 'info_label sources need resource.info_series' });
      }
      if ((s.from === 'info_label' || s.from === 'key') && !m.resource.key_label) {
        ctx.addIssue({ code: 'custom', path, message: `${s.from} sources need resource.key_label` });
      }
    }
  }) satisfies z.ZodType<Mapping>;

/** Validates a mapping at module load, so a shipped mapping with a typo fails every test at once. */
export function defineMapping(m: Mapping): Mapping {
  return mappingSchema.parse(m);
}

/** `name@version`: how logs and sample ids refer to a mapping. */
export function mappingRef(m: Pick<Mapping, 'name' | 'version'>): string {
  return `${m.name}@${m.version}`;
}
