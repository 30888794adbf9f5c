/** Responses of the privacy team's routes (queries/privacy-routes.ts). */
import { z } from 'zod';
import { KEY_ROLES } from '../config.js';
import { instantSchema, periodStatusSchema } from './common.js';

export const erasureAcceptedSchema = z
  .strictObject({
    request_id: z.uuid(),
    status: z.literal('queued'),
    status_url: z.string().meta({ description: 'Where to follow the request: GET /v1/erasures/{id}' }),
  })
  .meta({ id: 'ErasureAccepted' });

const count = z.number().int().nonnegative();

export const erasureStatusSchema = z
  .strictObject({
    request_id: z.uuid(),
    account: z.string().nullable(),
    status: z.enum(['queued', 'running', 'done', 'failed']),
    reason: z.string().nullable().meta({ description: '`request` (DELETE /v1/accounts/{account}) or `retention` (the sweep)' }),
    requested_at: instantSchema.nullable(),
    started_at: instantSchema.nullable(),
    finished_at: instantSchema.nullable(),
    passes: count.nullable(),
    error: z.string().nullable(),
    steps: z.array(z.strictObject({ step: z.string(), finished_at: instantSchema.nullable() })).meta({ description: 'The steps of an erasure, in order' }),
    removed: z.record(z.string(), count).meta({ description: 'What was removed, by kind (raw_samples, hourly_usage, queued_jobs, …)' }),
    periods: z.array(z.strictObject({ period: z.string(), status: periodStatusSchema, usage_rows: count, adjustment_rows: count })).meta({
      description: 'Billing periods the erasure touched; a closed period records it',
    }),
    fingerprints: z.strictObject({
      account_listed: z.boolean(),
      identifiers: count,
      identifiers_omitted: count,
      dropped_by_bound: count,
      expires_at: instantSchema.nullable(),
    }),
  })
  .meta({ id: 'ErasureStatus' });

export const auditTrailSchema = z
  .strictObject({
    from: instantSchema,
    to: instantSchema,
    rows: z.array(
      z.strictObject({
        ts: instantSchema,
        key_id: z.string().meta({ description: "The key's public id (never its secret); `-` when no valid key was presented" }),
        role: z.union([z.enum(KEY_ROLES), z.literal('-')]),
        method: z.string(),
        route: z.string(),
        path: z.string(),
        status: z.number().int(),
        duration_ms: z.number(),
        request_id: z.string(),
      }),
    ),
  })
  .meta({ id: 'AuditTrail' });

export const reinstatementSchema = z
  .strictObject({
    account: z.string(),
    reinstated: z.literal(true),
    was_refused_until: instantSchema.meta({ description: 'When the refusal would have expired by itself' }),
    message: z.string(),
  })
  .meta({ id: 'Reinstatement' });

/** GET /v1/accounts/{account}/export as JSON: everything held about the account's usage. */
export const accountExportSchema = z
  .strictObject({
    account: z.string(),
    generated_at: instantSchema,
    lifecycle: z.strictObject({
      account_id: z.string(),
      status: z.enum(['active', 'terminated']),
      terminated_at: z.string().nullable(),
      delete_after: z.string().nullable(),
    }),
    hourly_usage: z.array(z.record(z.string(), z.unknown())),
    adjustments: z.array(z.record(z.string(), z.unknown())),
    samples: z.array(z.record(z.string(), z.unknown())),
  })
  .meta({ id: 'AccountExport' });
