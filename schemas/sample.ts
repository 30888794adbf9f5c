/**
 * The v1 wire format (DESIGN.md, "Wire format"): one measurement of one resource over one
 * window. Everything a producer sends passes through `parseSample`, which either returns a
 * normalized sample whose value is an exact decimal string, or a list of precise errors.
 */
import { z } from 'zod';
import { GAUGE_METRICS, METRIC_KINDS, METRICS, type Metric } from './metrics.js';
import { printable, textField } from './text.js';

// The metric kinds and their rules are the catalogue's (schemas/metrics.ts); re-exported
// here because the wire format is where most readers look for them.
export { GAUGE_METRICS, METRICS, type Metric };

export const RESOURCE_TYPES = ['vm', 'volume', 'database', 'bucket', 'load_balancer', 'network'] as const;
export type ResourceType = (typeof RESOURCE_TYPES)[number];

export const LIMITS = {
  idLength: 128,
  accountIdLength: 128,
  resourceIdLength: 256,
  regionLength: 64,
  attributeCount: 16,
  attributeKeyLength: 64,
  attributeValueLength: 256,
  maxIntervalS: 3600,
  /** How far in the future a window may end: producers' clocks drift, but not by hours. */
  maxFutureMs: 5 * 60 * 1000,
  /** Earliest accepted window end; anything before is a producer bug, not usage. */
  minTsMs: Date.UTC(2000, 0, 1),
  /**
   * Largest value of a 6-decimal kind (cpu, gpu): 9 integer digits + 6 decimals = 15
   * significant digits, which a float64 always round-trips, so the decimal the producer
   * wrote is recovered exactly. The catalogue's wire rule holds it per kind.
   */
  maxCpuValue: METRIC_KINDS.cpu.wire.max,
  /** Byte values must be integers a float64 holds exactly (JSON numbers are float64). */
  maxByteValue: METRIC_KINDS.storage.wire.max,
} as const;

/** The wire format as a reader sees it: this interface is the contract. */
export interface SampleInput {
  id: string;
  account_id: string;
  resource_id: string;
  resource_type: ResourceType;
  region: string;
  metric: Metric;
  value: number;
  ts: string | number;
  interval_s: number;
  attributes?: Record<string, string>;
  /**
   * How the value was obtained when it was not measured over the whole window: `held`
   * means a collector held the last reading of a gauge across missed scrapes. Optional
   * (added after v1's first release): producers that never estimate send nothing.
   */
  estimated?: Estimation;
}

/** Provenance markers a sample may carry; absent means measured. */
export const ESTIMATIONS = ['held'] as const;
export type Estimation = (typeof ESTIMATIONS)[number];

/**
 * A JSON number whose written decimal no float64 holds (more than 15 significant digits,
 * e.g. 0.10000000000000001): the body decoder (ingest/json-text.ts) hands it over as this,
 * so validation refuses it by name instead of billing the float64 next to it.
 */
export class InexactNumber {
  constructor(readonly text: string) {}
}

/** "must be a number", or why a number that looks fine is refused. */
const numberError = (label: string, finite = true) => (iss: { input?: unknown }) =>
  iss.input instanceof InexactNumber
    ? `${label} ${iss.input.text} cannot be kept exactly as written (at most 15 significant digits)`
    : typeof iss.input === 'number' && finite
      ? `${label} must be finite`
      : `${label} must be a number`;

const idString = (label: string, max: number) => textField(label, max);

/** An account id as ingest accepts it: what every per-account route accepts too. */
export const accountIdSchema = textField('account_id', LIMITS.accountIdLength);

const tsSchema = z.union(
  [
    z.iso.datetime({ offset: true, error: 'ts must be an RFC 3339 timestamp with a time zone' }),
    z.number().int('ts as a number must be whole epoch milliseconds'),
  ],
  { error: 'ts must be an RFC 3339 string or epoch milliseconds' },
);

export const sampleInputSchema = z
  .object({
    id: idString('id', LIMITS.idLength),
    account_id: idString('account_id', LIMITS.accountIdLength),
    resource_id: idString('resource_id', LIMITS.resourceIdLength),
    resource_type: z.enum(RESOURCE_TYPES, { error: `resource_type must be one of ${RESOURCE_TYPES.join(', ')}` }),
    region: z
      .string({ error: 'region must be a string' })
      .max(LIMITS.regionLength, `region must be at most ${LIMITS.regionLength} characters`)
      .regex(/^[a-z0-9][a-z0-9-]*$/, 'region must be lower-case letters, digits and dashes, e.g. eu-west-1'),
    metric: z.enum(METRICS, { error: `metric must be one of ${METRICS.join(', ')}` }),
    value: z
      // JSON turns 1e999 into Infinity: say so rather than "not a number".
      .number({ error: numberError('value') })
      .refine((v) => v >= 0, 'value must not be negative'),
    ts: tsSchema,
    interval_s: z
      .number({ error: numberError('interval_s') })
      .int('interval_s must be a whole number of seconds')
      .min(1, 'interval_s must be at least 1')
      .max(LIMITS.maxIntervalS, `interval_s must be at most ${LIMITS.maxIntervalS}`),
    attributes: z
      .record(
        z
          .string()
          .max(LIMITS.attributeKeyLength, `attribute names must be at most ${LIMITS.attributeKeyLength} characters`)
          .regex(/^[a-z_][a-z0-9_]*$/, 'attribute names must be snake_case'),
        printable(
          z
            .string({ error: 'attribute values must be strings' })
            .max(LIMITS.attributeValueLength, `attribute values must be at most ${LIMITS.attributeValueLength} characters`),
          'attribute values',
        ),
      )
      .refine((a) => Object.keys(a).length <= LIMITS.attributeCount, `at most ${LIMITS.attributeCount} attributes`)
      .optional(),
    estimated: z.enum(ESTIMATIONS, { error: `estimated must be one of ${ESTIMATIONS.join(', ')} (or absent: measured)` }).optional(),
  })
  .strict() satisfies z.ZodType<SampleInput>;

/**
 * The same schema, compiled by zod (`z.compile`) into one generated function holding every
 * rule above, refinements included: a valid sample is checked in a single pass instead of
 * one dispatch per check (~3x cheaper on the ingest hot path). Anything that pass rejects is
 * parsed again by zod's runtime parser of `sampleInputSchema`, so errors are exactly the
 * schema's. A rule zod cannot compile runs on that runtime parser instead (compile never
 * throws). `sampleInputSchema` stays the uncompiled schema that other modules build on.
 */
const compiledSampleSchema = z.compile(sampleInputSchema);

/** A validated sample, ready for storage: `value` is an exact decimal string. */
export interface NormalizedSample {
  id: string;
  account_id: string;
  resource_id: string;
  resource_type: ResourceType;
  region: string;
  metric: Metric;
  /** Exact decimal as the kind's wire rule allows: integer bytes, or vCPU-/GPU-seconds with at most 6 decimals. */
  value: string;
  /** Window end, epoch milliseconds (sub-millisecond precision is dropped). */
  ts_ms: number;
  interval_s: number;
  attributes: Record<string, string>;
  /** Set only for a value that was not measured over the whole window (see SampleInput). */
  estimated?: Estimation;
}

export interface FieldError {
  path: string;
  message: string;
}

export type ParseResult = { ok: true; sample: NormalizedSample } | { ok: false; errors: FieldError[] };

export interface ParseOptions {
  /**
   * The oldest billable window end: raw samples older than the raw retention are deleted
   * by their TTL, so accepting one would lose it silently. Refused with a reason instead.
   */
  oldestTsMs?: number;
}

/**
 * Validates one item of a batch. `nowMs` is passed in so a whole batch is judged against
 * one clock reading and tests can fix it.
 */
export function parseSample(item: unknown, nowMs: number, opts: ParseOptions = {}): ParseResult {
  const parsed = compiledSampleSchema.safeParse(item);
  if (!parsed.success) {
    return {
      ok: false,
      errors: parsed.error.issues.map((i) => ({ path: i.path.join('.') || '(item)', message: describeIssue(item, i) })),
    };
  }
  const s = parsed.data;
  const errors: FieldError[] = [];

  const tsMs = typeof s.ts === 'number' ? s.ts : Date.parse(s.ts);
  if (!Number.isFinite(tsMs) || tsMs < LIMITS.minTsMs) {
    errors.push({ path: 'ts', message: 'ts must be on or after 2000-01-01T00:00:00Z' });
  } else if (tsMs > nowMs + LIMITS.maxFutureMs) {
    errors.push({ path: 'ts', message: 'ts must not be more than 5 minutes in the future' });
  } else if (opts.oldestTsMs !== undefined && tsMs < opts.oldestTsMs) {
    errors.push({ path: 'ts', message: `ts is older than the raw-sample retention allows (${new Date(opts.oldestTsMs).toISOString()}); it can no longer be billed` });
  }

  const value = exactValue(s.metric, s.value);
  if (typeof value !== 'string') errors.push({ path: 'value', message: value.error });

  if (errors.length > 0 || typeof value !== 'string') return { ok: false, errors };
  return {
    ok: true,
    sample: {
      id: s.id,
      account_id: s.account_id,
      resource_id: s.resource_id,
      resource_type: s.resource_type,
      region: s.region,
      metric: s.metric,
      value,
      ts_ms: Math.floor(tsMs),
      interval_s: s.interval_s,
      attributes: s.attributes ?? {},
      ...(s.estimated ? { estimated: s.estimated } : {}),
    },
  };
}

/**
 * Turns a JSON number into the exact decimal the producer wrote. Within the bounds checked
 * here the float64 that JSON.parse produced round-trips to that decimal, so no binary
 * rounding reaches a bill.
 */
export function exactValue(metric: Metric, value: number): string | { error: string } {
  const rule = METRIC_KINDS[metric].wire;
  if (rule.kind === 'decimal') {
    if (value > rule.max) return { error: `${metric} value must be at most ${rule.max} ${rule.unitPlural}` };
    const fixed = value.toFixed(rule.places);
    if (Number(fixed) !== value) return { error: `${metric} value must have at most ${rule.places} decimal places` };
    return trimDecimal(fixed);
  }
  if (!Number.isInteger(value)) return { error: `${metric} value must be a whole number of ${rule.unitPlural}` };
  if (value > rule.max) return { error: `${metric} value must be at most ${rule.max} ${rule.unitPlural}` };
  return value.toFixed(0);
}

/** A missing field says so, rather than "must be a string". */
function describeIssue(item: unknown, issue: z.core.$ZodIssue): string {
  if (issue.path.length === 0 && (item === null || typeof item !== 'object' || Array.isArray(item))) return 'a sample must be a JSON object';
  if (issue.code === 'invalid_key') return issue.issues[0]?.message ?? issue.message;
  if (issue.path.length === 1) {
    const field = String(issue.path[0]);
    if (item !== null && typeof item === 'object' && (item as Record<string, unknown>)[field] === undefined) return `${field} is required`;
  }
  return issue.message;
}

/** Drops a decimal's trailing zeros, and its point if nothing follows it: "12.500000" → "12.5". */
function trimDecimal(s: string): string {
  if (!s.includes('.')) return s;
  let end = s.length;
  while (s.charCodeAt(end - 1) === 48 /* 0 */) end--;
  if (s.charCodeAt(end - 1) === 46 /* . */) end--;
  return end === s.length ? s : s.slice(0, end);
}
