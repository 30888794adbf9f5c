/**
 * Bad input the simulator mixes into its stream, so every run exercises the ingest
 * path's validation (DESIGN.md invariant 5): each mutation below must be rejected by
 * `parseSample`, and the valid samples beside it must be kept. Each kind breaks exactly
 * one rule, so a rejection's error message says which rule held.
 */
import type { SampleInput } from '../schemas/sample.js';
import type { Rng } from './random.js';

type Mutation = (s: SampleInput, rng: Rng) => unknown;

const DAY_MS = 86_400_000;

/** Every kind of invalid item the simulator produces, by name (names appear in tests). */
export const INVALID_KINDS = {
  negative_value: (s) => ({ ...s, value: -(s.value + 1) }),
  nan_string: (s, rng) => ({ ...s, value: rng.pick(['NaN', 'Infinity', '-Infinity']) }),
  numeric_string: (s) => ({ ...s, value: String(s.value) }),
  // What JSON.stringify makes of Infinity or NaN.
  null_value: (s) => ({ ...s, value: null }),
  unknown_metric: (s, rng) => ({ ...s, metric: rng.pick(['tpu', 'CPU', 'disk_iops', '']) }),
  unknown_resource_type: (s) => ({ ...s, resource_type: 'gpu_node' }),
  // One more decimal than the wire format allows: the last digit would be lost in billing.
  cpu_seven_decimals: (s, rng) => ({ ...s, metric: 'cpu', value: (rng.int(0, 999_999_999) * 10 + 1) / 1e7 }),
  fractional_bytes: (s, rng) => ({ ...s, metric: rng.pick(['memory', 'storage', 'bandwidth_in']), value: 1024.5 }),
  missing_field: (s, rng) => {
    const copy: Record<string, unknown> = { ...s };
    delete copy[rng.pick(['account_id', 'resource_id', 'resource_type', 'region', 'metric', 'value', 'ts', 'interval_s'])];
    return copy;
  },
  // Strict schema: an unexpected field (here a hostname, a direct identifier) is refused.
  unknown_field: (s) => ({ ...s, hostname: 'web-01.internal.example' }),
  bad_interval: (s, rng) => ({ ...s, interval_s: rng.pick([0, -60, 1.5, 7200]) }),
  bad_ts: (s, rng) => ({ ...s, ts: rng.pick(['yesterday', '2024-13-45T25:00:00Z', '2024-06-01T12:00:00', 1.5e12 + 0.5]) }),
  future_ts: (s) => ({ ...s, ts: tsMsOf(s) + 3650 * DAY_MS }),
  ancient_ts: (s) => ({ ...s, ts: '1999-12-31T23:59:59Z' }),
  bad_region: (s, rng) => ({ ...s, region: rng.pick(['EU West 1', 'eu_west_1', '']) }),
  long_id: (s) => ({ ...s, id: `${s.id}:${'x'.repeat(130)}` }),
  control_character: (s) => ({ ...s, resource_id: `${s.resource_id}\u0000` }),
  bad_attributes: (s, rng) => ({ ...s, attributes: rng.pick([{ zone: 5 }, { 'Instance Type': 'm5.large' }]) }),
  too_many_attributes: (s) => ({
    ...s,
    attributes: Object.fromEntries(Array.from({ length: 17 }, (_, i) => [`attr_${i}`, 'x'])),
  }),
  not_an_object: (_s, rng) => rng.pick<unknown>([null, 42, 'sample', []]),
} satisfies Record<string, Mutation>;

export type InvalidKind = keyof typeof INVALID_KINDS;
const KINDS = Object.keys(INVALID_KINDS) as InvalidKind[];

/**
 * An invalid variant of a valid sample. Its id gets a `:bad` suffix so it never shares
 * an idempotency token with the valid original (an ingest that wrongly accepted it must
 * not be able to hide that behind dedup).
 */
export function makeInvalid(sample: SampleInput, rng: Rng, kind: InvalidKind = rng.pick(KINDS)): unknown {
  return INVALID_KINDS[kind]({ ...sample, id: `${sample.id}:bad` }, rng);
}

function tsMsOf(s: SampleInput): number {
  return typeof s.ts === 'number' ? s.ts : Date.parse(s.ts);
}
