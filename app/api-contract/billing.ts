/** Catalogue: the billing read side (queries/routes.ts, queries/export-routes.ts, terminate in queries/privacy-routes.ts). */
import { z } from 'zod';
import { exportRequestSchema } from '../../queries/export/usage-export.js';
import { coverageQuerySchema } from '../../queries/routes.js';
import { usageRequestSchema } from '../../queries/usage.js';
import { accountCoverageSchema, accountUsageSchema, producersSchema, terminationSchema, usageExportLineSchema } from '../../schemas/api/billing.js';
import { accountParam, errorResponse, invalidAccount, invalidQuery, json } from './common.js';
import type { HeaderDoc, RouteDoc } from './types.js';

const billing = { roles: ['billing'] } as const;

const exportHeaders: Record<string, HeaderDoc> = {
  'X-Complete': { description: 'Whether every sample acknowledged for the range is aggregated', schema: z.enum(['true', 'false']) },
  'X-Total-Accounts': { description: 'Accounts in the whole export', schema: z.string().regex(/^\d+$/) },
  'X-Page-Accounts': { description: 'Accounts on this page', schema: z.string().regex(/^\d+$/) },
  'X-Next-Cursor': { description: 'While more pages follow: pass it back as `cursor`', schema: z.string() },
  Link: { description: '`</v1/usage?…&cursor=…>; rel="next"` while more pages follow', schema: z.string() },
  'X-Period-Status': { description: 'With `period`: open, closing or closed', schema: z.enum(['open', 'closing', 'closed']) },
  'X-Export-SHA256': { description: 'Once the period is closed: SHA-256 of its full NDJSON export (all pages, no group_by), recorded at close; it never changes', schema: z.string() },
};

export const BILLING_ROUTES: RouteDoc[] = [
  {
    method: 'GET',
    path: '/v1/accounts/:account/usage',
    operationId: 'getAccountUsage',
    tag: 'billing',
    summary: "An account's usage totals, exact",
    description:
      'Exact totals per period (hour, day, month or the whole range) and metric, optionally per resource and region; quantities are decimal strings. ' +
      '`complete` says whether every sample acknowledged up to `to` is included, and if not, why.',
    access: billing,
    pathParams: accountParam,
    query: usageRequestSchema,
    queryDocs: {
      from: 'Start of the range, on a whole hour: RFC 3339 with a time zone, YYYY-MM-DD or epoch ms (default: the start of the month of `to`)',
      to: 'End of the range (exclusive), on a whole hour (default: the next whole hour). A range spans at most 400 days',
      granularity: 'Period of each row',
      group_by: 'Comma-separated keys of each row besides the period: metric (always), resource_id, region',
    },
    responses: { 200: { description: "The account's usage", content: json(accountUsageSchema) }, 400: errorResponse('A bad account id or query', ['invalid_account', 'invalid_query']) },
  },
  {
    method: 'GET',
    path: '/v1/accounts/:account/coverage',
    operationId: 'getAccountCoverage',
    tag: 'billing',
    summary: "How much of a period an account's resources reported",
    description: 'Per metric: seconds covered against seconds expected within each resource’s span, and the hours with gaps. Whether an invoice’s data is all there.',
    access: billing,
    pathParams: accountParam,
    query: coverageQuerySchema,
    queryDocs: { period: 'The billing period (default: the current one)' },
    responses: { 200: { description: 'Coverage per metric', content: json(accountCoverageSchema) }, 400: errorResponse('A bad account id or query', ['invalid_account', 'invalid_query']) },
  },
  {
    method: 'GET',
    path: '/v1/producers',
    operationId: 'listProducers',
    tag: 'billing',
    summary: 'Producers that number their batches, and the numbers missing',
    access: billing,
    responses: { 200: { description: 'Every tracked producer', content: json(producersSchema) }, 400: invalidQuery() },
  },
  {
    method: 'GET',
    path: '/v1/usage',
    operationId: 'exportUsage',
    tag: 'billing',
    summary: "Every account's totals for a billing period, streamed (NDJSON or CSV)",
    description:
      'One page of accounts per request, in account order; follow `X-Next-Cursor` (or `Link: rel="next"`). The format is chosen by `Accept` ' +
      '(application/x-ndjson or text/csv), or `format=`. For a closed period the concatenated pages without group_by are byte for byte the export whose SHA-256 is in `X-Export-SHA256`.',
    access: billing,
    query: exportRequestSchema,
    queryDocs: {
      period: 'The billing period, YYYY-MM (or give from and to)',
      from: 'Start of a range on a whole hour (with `to`, instead of `period`)',
      to: 'End of the range (exclusive), on a whole hour',
      group_by: 'Finer rows: resource_id, region (metric is always a key)',
      limit: 'Accounts per page (default 1000)',
      cursor: 'The `X-Next-Cursor` of the previous page',
      format: 'Overrides Accept, for clients that cannot set headers',
    },
    headers: { Accept: { description: 'application/x-ndjson or text/csv', schema: z.string() } },
    responses: {
      200: {
        description: 'One page of the export; each NDJSON line (or CSV row) is one account × metric total',
        content: { 'application/x-ndjson': { schema: usageExportLineSchema, raw: 'text' }, 'text/csv': { raw: 'text' } },
        headers: exportHeaders,
      },
      400: errorResponse('A bad query or a cursor this export did not issue', ['invalid_query', 'invalid_cursor']),
      406: errorResponse('Accept names neither NDJSON nor CSV', ['not_acceptable']),
    },
  },
  {
    method: 'POST',
    path: '/v1/accounts/:account/terminate',
    operationId: 'terminateAccount',
    tag: 'billing',
    summary: 'Terminate an account: its usage is erased after the retention period',
    description: 'Terminating again never postpones the erasure deadline.',
    access: { roles: ['billing', 'privacy'] },
    pathParams: accountParam,
    responses: { 200: { description: 'The account’s lifecycle and erasure deadline', content: json(terminationSchema) }, 400: invalidAccount },
  },
];
