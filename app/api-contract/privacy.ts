/** Catalogue: the privacy team's routes (queries/privacy-routes.ts). */
import { z } from 'zod';
import { auditQuerySchema, exportQuerySchema } from '../../queries/privacy-routes.js';
import { accountExportSchema, auditTrailSchema, erasureAcceptedSchema, erasureStatusSchema, reinstatementSchema } from '../../schemas/api/privacy.js';
import { accountParam, errorResponse, invalidAccount, json } from './common.js';
import type { RouteDoc } from './types.js';

const privacy = { roles: ['privacy'] } as const;

export const PRIVACY_ROUTES: RouteDoc[] = [
  {
    method: 'GET',
    path: '/v1/accounts/:account/export',
    operationId: 'exportAccountData',
    tag: 'privacy',
    summary: 'Access and portability: everything held about an account’s usage',
    description: 'Streamed as one JSON document, or as CSV with a record_type column (by `format`, else by Accept).',
    access: privacy,
    pathParams: accountParam,
    query: exportQuerySchema,
    queryDocs: { format: 'json or csv (default: by Accept, else json)' },
    responses: {
      200: {
        description: 'The export, as an attachment',
        content: { 'application/json': { schema: accountExportSchema }, 'text/csv': { raw: 'text' } },
        headers: { 'Content-Disposition': { description: 'attachment; filename="account-export.json|csv"', schema: z.string() } },
      },
      400: errorResponse('A bad account id or query', ['invalid_account', 'invalid_query']),
    },
  },
  {
    method: 'DELETE',
    path: '/v1/accounts/:account',
    operationId: 'eraseAccount',
    tag: 'privacy',
    summary: 'Erase an account (deletion request)',
    description:
      'Queues the erasure at once: from now on ingest refuses the account’s samples, and the worker deletes its billing rows, queued jobs and dedup records. Anonymized analytics is untouched. Follow `status_url`.',
    access: privacy,
    pathParams: accountParam,
    responses: { 202: { description: 'Queued', content: json(erasureAcceptedSchema) }, 400: invalidAccount },
  },
  {
    method: 'GET',
    path: '/v1/erasures/:id',
    operationId: 'getErasure',
    tag: 'privacy',
    summary: 'The status of an erasure request',
    description: 'Each step with when it finished, what was removed, and the billing periods touched. Statuses are kept 90 days.',
    access: privacy,
    // The route checks the id with z.uuid() inline.
    pathParams: { id: { schema: z.uuid(), description: 'The request_id DELETE /v1/accounts/{account} answered' } },
    responses: {
      200: { description: 'The request’s status', content: json(erasureStatusSchema) },
      400: errorResponse('The id is not a UUID, or a query parameter was given', ['invalid_request_id', 'invalid_query']),
      404: errorResponse('No such request (or older than 90 days)', ['not_found']),
    },
  },
  {
    method: 'POST',
    path: '/v1/accounts/:account/reinstate',
    operationId: 'reinstateAccount',
    tag: 'privacy',
    summary: 'Accept an erased account’s samples again',
    description: 'After an erasure ingest refuses the account’s samples (`account_erased`), so a forgotten agent cannot silently re-create it; this lifts that. The erased data stays erased.',
    access: privacy,
    pathParams: accountParam,
    responses: {
      200: { description: 'Reinstated', content: json(reinstatementSchema) },
      400: errorResponse('A bad account id, or a query parameter was given', ['invalid_account', 'invalid_query']),
      404: errorResponse('The account is not on the erased list', ['not_erased']),
      409: errorResponse('The account is being erased; reinstate it once its erasure is done', ['erasure_in_progress']),
    },
  },
  {
    method: 'GET',
    path: '/v1/audit',
    operationId: 'getAuditTrail',
    tag: 'privacy',
    summary: 'The audit trail of API calls',
    description: 'Who (key id and role, never the key) called what and when, newest first. Kept AUDIT_RETENTION_MONTHS.',
    access: privacy,
    query: auditQuerySchema,
    queryDocs: { from: 'Start (default: 24 hours ago)', to: 'End, exclusive (default: now)', key_id: 'Only this key’s calls', limit: 'Rows at most' },
    responses: { 200: { description: 'The calls', content: json(auditTrailSchema) }, 400: errorResponse('A bad query', ['invalid_query']) },
  },
];
