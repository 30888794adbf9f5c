/** Catalogue: ingest (POST /v1/samples) and the quarantine (ingest/routes.ts, ingest/quarantine-routes.ts). */
import { z } from 'zod';
import { idSchema as quarantineIdSchema, pageSchema } from '../../ingest/quarantine-routes.js';
import { MAX_REJECTED_DETAILS } from '../../ingest/routes.js';
import { DEFAULT_MAX_DATA_POINTS, OTLP_METRICS_PATH } from '../../ingest/otlp/routes.js';
import { otlpExportResponseSchema, otlpStatusSchema, samplesAcceptedSchema, samplesBodySchema, quarantineDiscardSchema, quarantineEntryWithSamplesSchema, quarantineListSchema, quarantineReplaySchema } from '../../schemas/api/ingest.js';
import { apiErrorSchema } from '../../schemas/api/common.js';
import { errorResponse, json, retryLater } from './common.js';
import type { RouteDoc } from './types.js';

const exampleSample = {
  id: 'vm-42:cpu:2026-11-30T10:00:00Z',
  account_id: 'acct-1001',
  resource_id: 'vm-42',
  resource_type: 'vm',
  region: 'eu-west-1',
  metric: 'cpu',
  value: 42.5,
  ts: '2026-11-30T10:00:00Z',
  interval_s: 60,
  attributes: { instance_type: 'm5.large' },
};

const producerHeaders = {
  'X-Producer-Id': {
    description: 'Optional batch numbering: the producer, 1 to 128 letters, digits or . _ : - (with X-Producer-Seq). GET /v1/producers reports missing batch numbers.',
    schema: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/),
  },
  'X-Producer-Seq': { description: "The batch's number for this producer, a whole number (with X-Producer-Id)", schema: z.string().regex(/^\d{1,15}$/) },
  'Content-Encoding': { description: 'gzip, or absent; the body limit counts decompressed bytes', schema: z.enum(['gzip', 'identity']) },
};

const quarantineId = { id: { schema: quarantineIdSchema, description: 'The id of the batch whose rows are quarantined (a UUID)' } };
const billing = { roles: ['billing'] } as const;
const invalidId = errorResponse('The id is not a UUID', ['invalid_id']);
const notFound = errorResponse('Nothing is quarantined under this id', ['not_found']);

export const INGEST_ROUTES: RouteDoc[] = [
  {
    method: 'POST',
    path: '/v1/samples',
    operationId: 'postSamples',
    tag: 'ingest',
    summary: 'Send usage samples',
    description:
      'A batch of samples as a JSON array, `{ "samples": [...] }`, or NDJSON (one sample per line). Each item is validated on its own: valid ones are accepted, ' +
      `invalid ones are listed with their field errors (the first ${MAX_REJECTED_DETAILS}). 202 means the accepted samples are durable and will be billed exactly once; ` +
      'sending the same sample again (same `id` or natural key) never bills it twice.',
    access: { roles: ['producer'] },
    rateLimit: 'ingest',
    headers: producerHeaders,
    body: {
      description: 'The samples (wire format v1)',
      required: true,
      content: {
        'application/json': { schema: samplesBodySchema, example: [exampleSample] },
        'application/x-ndjson': { raw: 'text', example: `${JSON.stringify(exampleSample)}\n` },
      },
    },
    responses: {
      202: { description: 'Accepted: the valid samples are durable; rejected items are listed', content: json(samplesAcceptedSchema) },
      400: errorResponse('Nothing in the batch is valid (details.rejected lists why), the body is unreadable or empty, or the producer headers are malformed', [
        'no_valid_samples',
        'unreadable_body',
        'empty_batch',
        'invalid_producer_headers',
        'bad_request',
      ]),
      413: errorResponse('More samples than MAX_BATCH_ITEMS, or a body over MAX_BODY_BYTES', ['batch_too_large', 'body_too_large']),
      415: errorResponse('A content type or content encoding the endpoint does not read', ['unsupported_media_type']),
      429: retryLater('Over the per-key request rate, or a new producer id beyond the tracked bound', ['rate_limited', 'too_many_producers']),
      503: retryLater('Back-pressure: the pipeline is behind, or Redis is unavailable; nothing of this batch was acknowledged', ['backpressure', 'redis_unavailable']),
    },
  },
  {
    method: 'POST',
    path: OTLP_METRICS_PATH,
    operationId: 'postOtlpMetrics',
    tag: 'ingest',
    summary: 'OTLP/HTTP metrics export (OpenTelemetry)',
    description:
      'An ExportMetricsServiceRequest in binary protobuf or OTLP/JSON, optionally gzip-compressed: point an OpenTelemetry exporter or Collector at this server with a producer key. ' +
      `Data points become samples and go the same way as POST /v1/samples (validation, exactly-once, back-pressure). At most ${DEFAULT_MAX_DATA_POINTS} data points a request. ` +
      'Answers are OTLP’s own, in the request’s encoding: data points that are valid OTLP but not billable are reported in `partialSuccess`; refusals are a google.rpc.Status (401/403 use the API’s error shape).',
    access: { roles: ['producer'] },
    rateLimit: 'ingest',
    headers: { 'Content-Encoding': producerHeaders['Content-Encoding'] },
    body: {
      description: 'ExportMetricsServiceRequest (opentelemetry-proto v1.11.0)',
      required: true,
      content: { 'application/x-protobuf': { raw: 'binary' }, 'application/json': { schema: z.record(z.string(), z.unknown()).meta({ description: 'OTLP/JSON encoding of ExportMetricsServiceRequest' }) } },
    },
    responses: {
      200: { description: 'Taken; partialSuccess says what was refused and why', content: { 'application/json': { schema: otlpExportResponseSchema }, 'application/x-protobuf': { raw: 'binary' } } },
      400: { description: 'The body cannot be read (protobuf, JSON or gzip)', content: { 'application/json': { schema: otlpStatusSchema }, 'application/x-protobuf': { raw: 'binary' } } },
      413: { description: 'Body or data points over their limit: send smaller batches', content: { 'application/json': { schema: otlpStatusSchema }, 'application/x-protobuf': { raw: 'binary' } } },
      415: {
        description: 'Another Content-Encoding (a google.rpc.Status) or Content-Type (the API’s error shape, `unsupported_media_type`)',
        content: { 'application/json': { schema: z.union([otlpStatusSchema, apiErrorSchema]) }, 'application/x-protobuf': { raw: 'binary' } },
      },
      503: {
        description: 'Back-pressure (a google.rpc.Status), or Redis unavailable (the API’s error shape): retry after Retry-After',
        headers: { 'Retry-After': { description: 'Seconds to wait before retrying', schema: z.string().regex(/^\d+$/) } },
        content: { 'application/json': { schema: z.union([otlpStatusSchema, apiErrorSchema]) }, 'application/x-protobuf': { raw: 'binary' } },
      },
    },
  },
  {
    method: 'GET',
    path: '/v1/quarantine',
    operationId: 'listQuarantine',
    tag: 'quarantine',
    summary: 'List quarantined rows',
    description: 'Rows the engine refused for good, set apart from their batch so nothing else waits for them: oldest first, with totals.',
    access: billing,
    query: pageSchema,
    queryDocs: { offset: 'Entries to skip', limit: 'Entries per page' },
    responses: { 200: { description: 'A page of entries', content: json(quarantineListSchema) }, 400: errorResponse('A bad offset or limit', ['invalid_query']) },
  },
  {
    method: 'GET',
    path: '/v1/quarantine/:id',
    operationId: 'getQuarantineEntry',
    tag: 'quarantine',
    summary: 'One quarantined entry with its rows as samples',
    access: billing,
    pathParams: quarantineId,
    responses: { 200: { description: 'The entry', content: json(quarantineEntryWithSamplesSchema) }, 400: invalidId, 404: notFound },
  },
  {
    method: 'POST',
    path: '/v1/quarantine/:id/replay',
    operationId: 'replayQuarantineEntry',
    tag: 'quarantine',
    summary: 'Send quarantined rows through validation again',
    description: "Rows valid by today's rules go into a new batch (and are billed once); the others stay quarantined with their reasons.",
    access: billing,
    pathParams: quarantineId,
    responses: { 200: { description: 'What the replay accepted and what remains', content: json(quarantineReplaySchema) }, 400: invalidId, 404: notFound },
  },
  {
    method: 'DELETE',
    path: '/v1/quarantine/:id',
    operationId: 'discardQuarantineEntry',
    tag: 'quarantine',
    summary: 'Discard a quarantined entry: its rows will never be billed',
    access: billing,
    pathParams: quarantineId,
    responses: { 200: { description: 'Discarded', content: json(quarantineDiscardSchema) }, 400: invalidId, 404: notFound },
  },
];
