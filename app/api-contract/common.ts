/** Pieces several catalogue entries share. */
import { z } from 'zod';
import { accountIdSchema } from '../../schemas/sample.js';
import { apiErrorSchema } from '../../schemas/api/common.js';
import type { ParamDoc, ResponseDoc } from './types.js';

/** An error response in the API's one shape; `codes` are the error codes it may carry. */
export function errorResponse(description: string, codes?: readonly string[]): ResponseDoc {
  return {
    description: codes?.length ? `${description} (error.code: ${codes.map((c) => `\`${c}\``).join(', ')})` : description,
    content: { 'application/json': { schema: apiErrorSchema } },
  };
}

export const retryAfterHeader = { description: 'Seconds to wait before retrying', schema: z.string().regex(/^\d+$/) };

/** An error the caller should retry after `Retry-After` seconds. */
export function retryLater(description: string, codes: readonly string[]): ResponseDoc {
  return { ...errorResponse(description, codes), headers: { 'Retry-After': retryAfterHeader } };
}

export const accountParam: Record<string, ParamDoc> = {
  account: { schema: accountIdSchema, description: 'The customer account id, as its samples carry it (percent-encoded in the path)' },
};

export const invalidAccount = errorResponse('The account id in the path is not one ingest would accept', ['invalid_account']);
export const invalidQuery = (codes: readonly string[] = ['invalid_query']) => errorResponse('A query parameter is missing, repeated, unknown or invalid: the message names it', codes);

export const json = (schema: z.ZodType, example?: unknown) => ({ 'application/json': example === undefined ? { schema } : { schema, example } });
