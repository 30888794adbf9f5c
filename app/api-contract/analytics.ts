/** Catalogue: what capacity planners and data scientists pull (queries/analytics-routes.ts). */
import { z } from 'zod';
import { sqlRequestSchema } from '../../queries/analytics-routes.js';
import { capacityQueries, describeQuery, LIBRARY } from '../../queries/capacity/library.js';
import { DATASET_FORMATS, datasets, describeDataset } from '../../queries/datasets/datasets.js';
import { REFUSAL_STATUS } from '../../queries/sandbox/policy.js';
import { SHAPE_HEADERS } from '../../queries/shaped-by/headers.js';
import { analyticsTablesSchema, dataCardSchema, datasetListSchema, namedQueryListSchema, namedQueryResultSchema, sqlResultSchema } from '../../schemas/api/analytics.js';
import { errorResponse, json, retryLater } from './common.js';
import type { HeaderDoc, ParamDoc, ResponseDoc, RouteDoc } from './types.js';

/** What shaped an analytics answer, in headers too (queries/shaped-by/headers.ts): CSV and Parquet have no room for it. */
const shapeHeaders: Record<string, HeaderDoc> = {
  [SHAPE_HEADERS.k]: { description: 'The k-anonymity threshold the answer was published under', schema: z.string().regex(/^\d+$/) },
  [SHAPE_HEADERS.resourceHours]: { description: 'Resource-hours in the hours read', schema: z.string().regex(/^\d+$/) },
  [SHAPE_HEADERS.suppressed]: { description: 'Resources suppressed in those hours (cells under k)', schema: z.string().regex(/^\d+$/) },
  [SHAPE_HEADERS.generalized]: { description: 'Resources generalized to a coarser cell', schema: z.string().regex(/^\d+$/) },
  [SHAPE_HEADERS.history]: { description: 'History found: `hours=…; span=…[; needs=…][; first=…; last=…]`', schema: z.string() },
  Warning: { description: 'One `199` warning per thing that shaped the answer, where it matters', schema: z.string() },
};

const planner = { roles: ['planner'] } as const;
const scientist = { roles: ['datascience'] } as const;

/** The named things' parameters in words, from the same SQL headers the routes validate with. */
function paramList(items: { name: string; params: ReturnType<typeof describeQuery>['params'] }[]): string {
  return items
    .map((q) => `- \`${q.name}\`: ${q.params.map((p) => `\`${p.name}\` (${p.type}${p.required ? ', required' : p.default !== undefined ? `, default ${p.default}` : ''})`).join(', ') || 'no parameters'}`)
    .join('\n');
}

const queryNames = () => capacityQueries().map((q) => q.id.slice(LIBRARY.length + 1));
const datasetNames = () => datasets().map((d) => d.name);

/** A named query's or dataset's own parameters, as one free-form group of query parameters. */
const ownParams = (what: string, list: string): ParamDoc & { style: 'form'; explode: boolean } => ({
  schema: z.record(z.string(), z.string()),
  description: `The ${what}'s own parameters, each as name=value (unknown names are refused). Times: RFC 3339 with a time zone, YYYY-MM-DD, epoch ms, or now / now-30d / now+12h.\n\n${list}`,
  style: 'form',
  explode: true,
});

/** Sandbox refusals by status, from the policy's own table. */
const refusals = (status: number) =>
  Object.entries(REFUSAL_STATUS)
    .filter(([, s]) => s === status)
    .map(([code]) => code);

const tooBig: ResponseDoc = errorResponse('The query exceeded a limit of its session: narrow the time range', ['query_limit_exceeded']);
const busy: ResponseDoc = retryLater('Over the per-key rate (ANALYTICS_REQUESTS_PER_MIN), or the analytics session’s wait queue is full', ['rate_limited', 'analytics_busy']);
const unknownQuery = errorResponse('No such named query', ['unknown_query']);
const badParams = errorResponse('A parameter is missing or invalid; details.params lists what the query takes', ['invalid_params']);

function namedQueryRoute(path: string, operationId: string, pathParams: RouteDoc['pathParams']): RouteDoc {
  return {
    method: 'GET',
    path,
    operationId,
    tag: 'analytics',
    summary: 'Run a named capacity-planning query',
    description: 'JSON with its columns and rows (64-bit integers and decimals as strings), or CSV with `format=csv`.',
    access: planner,
    rateLimit: 'analytics',
    pathParams,
    extraQuery: {
      format: { schema: z.enum(['json', 'csv']).default('json'), description: 'json or csv' },
      params: ownParams('query', paramList(capacityQueries().map(describeQuery))),
    },
    responses: {
      200: { description: 'The result', content: { 'application/json': { schema: namedQueryResultSchema }, 'text/csv': { raw: 'text' } }, headers: shapeHeaders },
      400: badParams,
      404: unknownQuery,
      422: tooBig,
      429: busy,
    },
  };
}

export const ANALYTICS_ROUTES: RouteDoc[] = [
  {
    method: 'GET',
    path: '/v1/analytics/queries',
    operationId: 'listNamedQueries',
    tag: 'analytics',
    summary: 'The named capacity-planning queries and their parameters',
    access: planner,
    rateLimit: 'analytics',
    responses: { 200: { description: 'The queries', content: json(namedQueryListSchema) }, 429: busy },
  },
  namedQueryRoute('/v1/analytics/queries/:name', 'runNamedQuery', {
    name: { schema: z.enum(queryNames() as [string, ...string[]]), description: 'The query, by its name within its library' },
  }),
  namedQueryRoute('/v1/analytics/queries/:library/:name', 'runNamedQueryInLibrary', {
    library: { schema: z.enum([LIBRARY]), description: 'The library, as the listing names it (`capacity/fleet-size`)' },
    name: { schema: z.enum(queryNames() as [string, ...string[]]), description: 'The query' },
  }),
  {
    method: 'POST',
    path: '/v1/analytics/sql',
    operationId: 'runSql',
    tag: 'analytics',
    summary: 'Read-only SQL over the analytics database',
    description:
      'One SELECT over `analytics.*` only (no other database, no table functions that read storage, no SETTINGS or FORMAT), under the sandbox’s time, memory and result limits. ' +
      'A refusal names what was refused and why. A text/plain body is the SQL itself.',
    access: planner,
    rateLimit: 'analytics',
    body: {
      description: 'The statement, its bound parameters ({name:Type} placeholders) and the output format',
      required: true,
      content: {
        'application/json': { schema: sqlRequestSchema, example: { sql: 'SELECT metric, count() AS cells FROM analytics.fleet_usage_hourly WHERE hour >= {from:DateTime} GROUP BY metric', params: { from: '2026-11-01 00:00:00' } } },
        'text/plain': { raw: 'text', example: 'SELECT count() FROM analytics.fleet_usage_hourly' },
      },
    },
    responses: {
      200: { description: 'The result, streamed', content: { 'application/json': { schema: sqlResultSchema }, 'text/csv': { raw: 'text' } }, headers: shapeHeaders },
      400: errorResponse('A malformed request, or SQL that does not parse or bind', ['invalid_request', ...refusals(400)]),
      403: errorResponse('The key’s role may not call this, or the statement reads or does what the sandbox forbids', ['forbidden', ...refusals(403)]),
      413: errorResponse('The statement is too long', refusals(413)),
      422: errorResponse('The query exceeded a sandbox limit (time, memory, rows read, result size)', refusals(422)),
      429: busy,
    },
  },
  {
    method: 'GET',
    path: '/v1/analytics/tables',
    operationId: 'listAnalyticsTables',
    tag: 'analytics',
    summary: 'The analytics tables and views ad-hoc SQL may read, with their columns',
    access: planner,
    rateLimit: 'analytics',
    responses: { 200: { description: 'The tables', content: json(analyticsTablesSchema) }, 429: busy },
  },
  {
    method: 'GET',
    path: '/v1/analytics/datasets',
    operationId: 'listDatasets',
    tag: 'analytics',
    summary: 'The training datasets',
    access: scientist,
    rateLimit: 'analytics',
    responses: { 200: { description: 'The datasets, with their parameters and documented columns', content: json(datasetListSchema) }, 429: busy },
  },
  {
    method: 'GET',
    path: '/v1/analytics/datasets/:name',
    operationId: 'getDataset',
    tag: 'analytics',
    summary: 'A training dataset as Parquet or CSV, streamed',
    description: 'Anonymized aggregates only. `Link: rel="describedby"` points at its data card for the same parameters.',
    access: scientist,
    rateLimit: 'analytics',
    pathParams: { name: { schema: z.enum(datasetNames() as [string, ...string[]]), description: 'The dataset' } },
    extraQuery: {
      format: { schema: z.enum(Object.keys(DATASET_FORMATS) as [string, ...string[]]).default('parquet'), description: 'parquet or csv' },
      params: ownParams('dataset', paramList(datasets().map(describeDataset))),
    },
    responses: {
      200: {
        description: 'The dataset, as an attachment',
        content: { [DATASET_FORMATS.parquet.contentType]: { raw: 'binary' }, 'text/csv': { raw: 'text' } },
        headers: {
          ...shapeHeaders,
          'Content-Disposition': { description: 'attachment; filename="<name>_<from>_<to>[_split].<ext>"', schema: z.string() },
          Link: { description: '<…/card?…>; rel="describedby"', schema: z.string() },
          'X-Dataset-Schema-Version': { description: 'The dataset’s schema version', schema: z.string().regex(/^\d+$/) },
        },
      },
      400: badParams,
      404: errorResponse('No such dataset', ['unknown_dataset']),
      422: tooBig,
      429: busy,
    },
  },
  {
    method: 'GET',
    path: '/v1/analytics/datasets/:name/card',
    operationId: 'getDataCard',
    tag: 'analytics',
    summary: 'A dataset’s data card: schema with units, time range, split, k and privacy cost',
    access: scientist,
    rateLimit: 'analytics',
    pathParams: { name: { schema: z.enum(datasetNames() as [string, ...string[]]), description: 'The dataset' } },
    extraQuery: { params: ownParams('dataset', paramList(datasets().map(describeDataset))) },
    responses: {
      200: { description: 'The data card', content: json(dataCardSchema), headers: shapeHeaders },
      400: badParams,
      404: errorResponse('No such dataset', ['unknown_dataset']),
      429: busy,
    },
  },
];
