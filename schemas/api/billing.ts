/** Responses of the billing routes (queries/routes.ts, queries/privacy-routes.ts terminate). */
import { z } from 'zod';
import { METRICS } from '../sample.js';
import { decimalSchema, instantSchema, periodLabelSchema, periodStatusSchema } from './common.js';

/** An exact quantity of one metric (domain/units.ts Quantity). */
const quantityFields = {
  base_total: decimalSchema.meta({ description: 'The exact total in the base unit' }),
  base_unit: z.string().meta({ example: 'vCPU-seconds' }),
  quantity: decimalSchema.meta({ description: 'The billed quantity' }),
  unit: z.string().meta({ example: 'vCPU-hours' }),
  quantity_gib_month: decimalSchema.optional().meta({ description: 'Storage only: GiB-hours / 730' }),
};

export const usageRowSchema = z
  .strictObject({
    period_start: instantSchema,
    metric: z.enum(METRICS),
    resource_id: z.string().optional().meta({ description: 'With group_by=resource_id' }),
    region: z.string().optional().meta({ description: 'With group_by=region' }),
    ...quantityFields,
  })
  .meta({ id: 'UsageRow' });

export const adjustmentRowSchema = z
  .strictObject({
    billed_period: z.string().meta({ description: 'The period the late usage is billed in (first day, YYYY-MM-DD)' }),
    original_period: z.string().meta({ description: 'The period the usage was measured in (first day, YYYY-MM-DD)' }),
    accepted_date: z.string(),
    metric: z.enum(METRICS),
    ...quantityFields,
  })
  .meta({ id: 'AdjustmentRow' });

export const incompleteReasonSchema = z
  .strictObject({
    code: z.enum(['batches_in_flight', 'hours_pending', 'quarantined']),
    message: z.string(),
    quarantine_ids: z.array(z.uuid()).optional(),
  })
  .meta({ id: 'IncompleteReason' });

export const periodOverlapSchema = z.strictObject({
  period: periodLabelSchema,
  status: periodStatusSchema,
  closed_at: z.string().optional(),
  export_sha256: z.string().optional().meta({ description: 'Digest of the full NDJSON export recorded at close; it never changes' }),
});

export const accountUsageSchema = z
  .strictObject({
    account: z.string(),
    from: instantSchema,
    to: instantSchema,
    granularity: z.enum(['hour', 'day', 'month', 'total']),
    group_by: z.array(z.enum(['metric', 'resource_id', 'region'])),
    complete: z.boolean().meta({ description: 'Whether every sample acknowledged up to `to` is included' }),
    incomplete_reasons: z.array(incompleteReasonSchema).optional().meta({ description: 'Present when complete is false' }),
    periods: z.array(periodOverlapSchema).meta({ description: 'The status of every billing period the range touches' }),
    rows: z.array(usageRowSchema),
    adjustments: z.array(adjustmentRowSchema).meta({ description: 'Late samples for periods already closing or closed, billed in a period of this range' }),
  })
  .meta({ id: 'AccountUsage' });

export const accountCoverageSchema = z
  .strictObject({
    account: z.string(),
    period: periodLabelSchema,
    metrics: z.array(
      z.strictObject({
        metric: z.enum(METRICS),
        series: z.number().int().nonnegative().meta({ description: 'Resources reporting this metric in the period' }),
        covered_s: decimalSchema.meta({ description: 'Seconds covered by counted samples: measured_s + held_s' }),
        measured_s: decimalSchema.meta({ description: 'Of those, seconds whose value was measured' }),
        held_s: decimalSchema.meta({ description: 'Of those, seconds whose value a collector held across missed scrapes (`estimated: "held"`)' }),
        expected_s: decimalSchema,
        coverage: decimalSchema.meta({ description: 'covered / expected, 4 decimals' }),
        coverage_measured: decimalSchema.meta({ description: 'measured / expected, 4 decimals' }),
        gap_hours: z.number().int().nonnegative(),
      }),
    ),
  })
  .meta({ id: 'AccountCoverage' });

export const producersSchema = z
  .strictObject({
    producers: z.array(
      z.strictObject({
        producer: z.string(),
        last_seq: z.number().int(),
        missing: z.number().int().nonnegative(),
        first_missing: z.array(z.number().int()).meta({ description: 'The oldest missing sequence numbers (at most 20)' }),
      }),
    ),
  })
  .meta({ id: 'Producers' });

export const terminationSchema = z
  .strictObject({
    account_id: z.string(),
    status: z.enum(['active', 'terminated']),
    terminated_at: z.string().nullable(),
    delete_after: z.string().nullable().meta({ description: 'When the retention sweep erases the usage' }),
    already_terminated: z.boolean(),
    deadline: z.enum(['set', 'kept']),
    message: z.string(),
  })
  .meta({ id: 'Termination' });

/** One NDJSON line (or CSV row) of GET /v1/usage (domain/period-export.ts ExportRecord). */
export const usageExportLineSchema = z
  .strictObject({
    period: periodLabelSchema.optional().meta({ description: 'With period=' }),
    from: instantSchema.optional().meta({ description: 'With from/to' }),
    to: instantSchema.optional().meta({ description: 'With from/to' }),
    account_id: z.string(),
    kind: z.enum(['usage', 'adjustment']).meta({ description: '`adjustment`: late usage of an earlier, closed period billed in this one' }),
    metric: z.enum(METRICS),
    resource_id: z.string().optional().meta({ description: 'With group_by=resource_id' }),
    region: z.string().optional().meta({ description: 'With group_by=region' }),
    original_period: z.string().optional(),
    accepted_date: z.string().optional(),
    ...quantityFields,
  })
  .meta({ id: 'UsageExportLine' });
