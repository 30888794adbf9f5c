/** Responses of the ingest routes: POST /v1/samples and the quarantine (ingest/). */
import { z } from 'zod';
import { sampleInputSchema } from '../sample.js';
import { instantSchema, rejectedItemSchema } from './common.js';

export const samplesAcceptedSchema = z
  .strictObject({
    accepted: z.number().int().nonnegative().meta({ description: 'Samples accepted: durable in Redis, billed exactly once' }),
    rejected: z.array(rejectedItemSchema).meta({ description: 'The first 100 rejected items with their field errors' }),
    rejected_count: z.number().int().nonnegative().meta({ description: 'How many items were rejected in all' }),
    batch_id: z.uuid().meta({ description: 'The batch the accepted samples travel in' }),
  })
  .meta({ id: 'SamplesAccepted', example: { accepted: 2, rejected: [{ index: 2, errors: [{ path: 'metric', message: 'metric must be one of cpu, memory, storage, bandwidth_in, bandwidth_out, gpu' }] }], rejected_count: 1, batch_id: '0b9d8f5e-3c1a-4f7e-9a55-2f4e1c7d9b10' } });

/** The request body of POST /v1/samples as JSON: an array, or an object holding one. */
export const samplesBodySchema = z.union([z.array(sampleInputSchema), z.strictObject({ samples: z.array(sampleInputSchema) })]);

const quarantineEntryFields = {
  id: z.uuid().meta({ description: 'The id of the batch the rows came from; names the entry' }),
  batch_seq: z.number().int().nonnegative(),
  accepted_at: instantSchema,
  first_seen: instantSchema,
  reason: z.string().meta({ description: "The engine's error for the first refused row" }),
  rows: z.number().int().positive(),
  accounts: z.array(z.strictObject({ account: z.string(), hours: z.array(instantSchema) })).meta({ description: 'The accounts whose rows are held, and the usage hours they fall in' }),
};

export const quarantineEntrySchema = z.strictObject(quarantineEntryFields).meta({ id: 'QuarantineEntry' });

export const quarantineListSchema = z
  .strictObject({
    total_entries: z.number().int().nonnegative(),
    total_rows: z.number().int().nonnegative(),
    offset: z.number().int().nonnegative(),
    entries: z.array(quarantineEntrySchema),
  })
  .meta({ id: 'QuarantineList' });

export const quarantineEntryWithSamplesSchema = z
  .strictObject({
    ...quarantineEntryFields,
    // A row that no longer decodes is shown as an object saying so; the rest as samples
    // (ts in epoch ms), which is what a replay sends through validation again.
    samples: z.array(z.union([sampleInputSchema, z.strictObject({ reason: z.string().meta({ description: 'Why this row cannot be shown: discard it' }) })])),
  })
  .meta({ id: 'QuarantineEntryWithSamples' });

export const quarantineReplaySchema = z
  .strictObject({
    id: z.uuid(),
    accepted: z.number().int().nonnegative().meta({ description: 'Rows accepted into a new batch' }),
    batch_id: z.uuid().optional(),
    rejected: z.array(rejectedItemSchema).meta({ description: "Rows refused again, with today's reasons: they stay quarantined" }),
    remaining: z.number().int().nonnegative().meta({ description: 'Rows still quarantined under this id' }),
  })
  .meta({ id: 'QuarantineReplay' });

export const quarantineDiscardSchema = z.strictObject({ id: z.uuid(), discarded: z.number().int().positive() }).meta({ id: 'QuarantineDiscard' });

/** POST /v1/metrics answers in OTLP's own shapes (OTLP/HTTP specification), not the API's error shape. */
export const otlpExportResponseSchema = z
  .strictObject({
    partialSuccess: z
      .strictObject({
        rejectedDataPoints: z.string().regex(/^\d+$/).meta({ description: 'Data points refused (a 64-bit integer, as a string in OTLP/JSON)' }),
        errorMessage: z.string().meta({ description: 'Why, in words: retrying would not help' }),
      })
      .optional(),
  })
  .meta({ id: 'OtlpExportMetricsServiceResponse' });

export const otlpStatusSchema = z
  .strictObject({ code: z.number().int().meta({ description: 'The gRPC status code (3 invalid argument, 8 resource exhausted, 14 unavailable)' }), message: z.string() })
  .meta({ id: 'OtlpStatus' });
