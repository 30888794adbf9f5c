/**
 * Building blocks of the HTTP API's response schemas (schemas/api/*.ts). These schemas
 * describe what the routes send; the OpenAPI document (app/openapi.ts) is generated from
 * them and test/openapi-contract.test.ts checks every route's real answer against them.
 *
 * Objects are strict here on purpose: a field a route starts sending without saying so
 * here fails the contract test. The published document drops that strictness for
 * responses (clients must ignore fields they do not know: the API grows by adding them).
 */
import { z } from 'zod';

/** The one error shape of the API (lib/http-errors.ts). */
export const apiErrorSchema = z
  .strictObject({
    error: z.strictObject({
      code: z.string().meta({ description: 'A stable, machine-readable code (e.g. `invalid_query`, `forbidden`); branch on this, not on the message.' }),
      message: z.string().meta({ description: 'What was wrong, in words, for a person.' }),
      details: z.unknown().optional().meta({ description: 'Structured details where the code has them (e.g. the rejected items of a batch).' }),
    }),
  })
  .meta({ id: 'Error', example: { error: { code: 'forbidden', message: "this endpoint needs a billing key; this key's role is producer" } } });

/** An instant as every response writes it: RFC 3339 in UTC with milliseconds. */
export const instantSchema = z.iso.datetime().meta({ description: 'RFC 3339, UTC', example: '2026-11-01T00:00:00.000Z' });

/** An exact decimal as a string: quantities never pass through a binary float. */
export const decimalSchema = z
  .string()
  .regex(/^-?\d+(\.\d+)?$/)
  .meta({ description: 'An exact decimal number written as a string (never a binary float)', example: '12.5' });

/** A billing period label. */
export const periodLabelSchema = z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/).meta({ description: 'A billing period, YYYY-MM', example: '2026-11' });

export const periodStatusSchema = z.enum(['open', 'closing', 'closed']);

/** What a zod field error of a sample looks like in a 202 or 400 answer. */
export const fieldErrorSchema = z.strictObject({ path: z.string(), message: z.string() });

export const rejectedItemSchema = z
  .strictObject({
    index: z.number().int().nonnegative().meta({ description: 'Position of the item in the batch, from 0' }),
    errors: z.array(fieldErrorSchema),
  })
  .meta({ id: 'RejectedItem' });

/** A named parameter of a named query or dataset (queries/capacity/params.ts describeParam). */
export const paramDescriptionSchema = z
  .strictObject({
    name: z.string(),
    type: z.string().meta({ description: 'DateTime, Date, String, UInt32, Float64 or Enum(a, b, …)' }),
    required: z.boolean(),
    default: z.string().optional(),
    min: z.number().optional(),
    max: z.number().optional(),
    description: z.string(),
  })
  .meta({ id: 'ParamDescription' });

/** Parameters as resolved for a run: DateTime as RFC 3339, absent optionals as null. */
export const shownParamsSchema = z.record(z.string(), z.union([z.string(), z.number(), z.null()]));
