/** Responses of the operational routes: health, readiness and the status for the console (app/). */
import { z } from 'zod';
import { KEY_ROLES, ROLES } from '../config.js';
import { instantSchema } from './common.js';

export const healthSchema = z.strictObject({ status: z.literal('ok') }).meta({ id: 'Health' });

export const readinessSchema = z
  .strictObject({
    status: z.enum(['ready', 'not ready']),
    checks: z.record(z.string(), z.string()).meta({ description: 'Each dependency: `ok` or `failing: <why>`', example: { redis: 'ok', clickhouse: 'ok' } }),
    collector_targets: z
      .strictObject({
        up: z.number().int().nonnegative(),
        down: z.array(
          z.strictObject({ target: z.string(), error: z.string().optional(), message: z.string().optional(), since: instantSchema.optional() }),
        ),
        unknown: z.number().int().nonnegative(),
      })
      .optional()
      .meta({ description: 'Pull targets by health, when collectors run; reported without deciding readiness' }),
  })
  .meta({ id: 'Readiness' });

const count = z.number().int().nonnegative();
const rate = z.number().nonnegative();

export const pipelineStatusSchema = z
  .strictObject({
    generated_at: instantSchema,
    role: z.enum(ROLES),
    ingest: z.strictObject({
      scope: z.enum(['process', 'all ingest processes']).meta({ description: 'Sample counters are this process’s own, or with INGEST_PROCESSES every ingest process’s added up' }),
      since: instantSchema,
      samples_accepted: count,
      samples_rejected: count,
      batches_accepted_fleet: count,
      window_s: count,
      samples_per_s: rate,
      rejected_per_s: rate,
      batches_per_s: rate,
    }),
    queue: z.strictObject({ waiting: count, active: count, delayed: count }),
    dead_letters: count,
    quarantine: z.strictObject({ entries: count, rows: count }),
    freshness: z.strictObject({
      inflight_batches: count,
      fold_lag_batches: count,
      dirty_hours: count,
      billing_hour: instantSchema.nullable().optional(),
      analytics_hour: instantSchema.nullable().optional(),
      error: z.string().optional().meta({ description: 'Why the newest hours could not be read (the rest of the status stands)' }),
    }),
    collector: z.strictObject({
      configured: z.boolean(),
      up: count,
      down: count,
      unknown: count,
      targets: z.array(
        z.strictObject({
          id: z.string(),
          mapping: z.string(),
          health: z.enum(['up', 'down', 'unknown']),
          last_success: instantSchema.nullable(),
          last_duration_ms: z.number().nonnegative().nullable(),
          scrapes: count,
          failures: count,
          samples_produced: count,
          error: z.strictObject({ code: z.string(), message: z.string() }).optional(),
        }),
      ),
      targets_not_listed: count.optional(),
    }),
    key: z.strictObject({ id: z.string(), role: z.enum(KEY_ROLES) }).meta({ description: "The caller's key, by its public id" }),
  })
  .meta({ id: 'PipelineStatus' });
