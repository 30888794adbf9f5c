/** Catalogue: health, readiness, metrics, the status, the console and this reference (app/). */
import { z } from 'zod';
import { healthSchema, pipelineStatusSchema, readinessSchema } from '../../schemas/api/ops.js';
import { errorResponse, json } from './common.js';
import type { RouteDoc } from './types.js';

/** Where the reference is served (app/api-reference.ts). */
export const OPENAPI_PATH = '/openapi.json';
export const REFERENCE_PREFIX = '/docs/api';

const html = { 'text/html': { raw: 'text' as const } };

export const OPERATIONS_ROUTES: RouteDoc[] = [
  {
    method: 'GET',
    path: '/healthz',
    operationId: 'getHealth',
    tag: 'operations',
    summary: 'Liveness: the process answers',
    access: 'public',
    responses: { 200: { description: 'Alive', content: json(healthSchema, { status: 'ok' }) } },
  },
  {
    method: 'GET',
    path: '/readyz',
    operationId: 'getReadiness',
    tag: 'operations',
    summary: 'Readiness: Redis (and ClickHouse, where this role uses it) answer',
    access: 'public',
    responses: {
      200: { description: 'Ready', content: json(readinessSchema) },
      503: { description: 'Not ready: a check fails, and says why', content: json(readinessSchema) },
    },
  },
  {
    method: 'GET',
    path: '/metrics',
    operationId: 'getMetrics',
    tag: 'operations',
    summary: 'Prometheus metrics',
    access: 'public',
    responses: { 200: { description: 'The Prometheus text exposition format', content: { 'text/plain': { raw: 'text' } } } },
  },
  {
    method: 'GET',
    path: '/v1/status',
    operationId: 'getStatus',
    tag: 'operations',
    summary: 'The pipeline’s health as JSON: ingest rate, queue, freshness, quarantine, collectors',
    description: 'What the web console shows; computed at most once a second however many ask. Any valid key may read it.',
    access: 'any key',
    responses: { 200: { description: 'The status', content: json(pipelineStatusSchema), headers: { 'Cache-Control': { description: 'no-store', schema: z.literal('no-store') } } } },
  },
  {
    method: 'GET',
    path: OPENAPI_PATH,
    operationId: 'getOpenApiDocument',
    tag: 'operations',
    summary: 'This document: the OpenAPI 3.1 description of the whole HTTP API',
    access: 'public',
    responses: { 200: { description: 'The document', content: { 'application/json': { raw: 'text' } } } },
  },
  {
    method: 'GET',
    path: REFERENCE_PREFIX,
    operationId: 'getApiReferencePage',
    tag: 'operations',
    summary: 'The interactive API reference (this document, rendered)',
    description: 'Served from this process with its own Content-Security-Policy (only its own origin); nothing is loaded from elsewhere.',
    access: 'public',
    responses: { 200: { description: 'The reference page', content: html } },
  },
  {
    method: 'GET',
    path: '/console',
    operationId: 'redirectToConsole',
    tag: 'console',
    summary: 'Redirects to /console/',
    access: 'public',
    responses: { 301: { description: 'To /console/', headers: { Location: { description: '/console/', schema: z.string() } } } },
  },
  {
    method: 'GET',
    path: '/console/',
    operationId: 'getConsole',
    tag: 'console',
    summary: 'The web console',
    description: 'Static files under a strict Content-Security-Policy; it asks for an API key and calls this same API with it.',
    access: 'public',
    responses: { 200: { description: 'The console page', content: html }, 304: { description: 'Not modified (If-None-Match)' } },
  },
  {
    method: 'GET',
    path: '/console/*',
    operationId: 'getConsoleFile',
    tag: 'console',
    summary: 'A file of the web console (scripts, styles, images)',
    access: 'public',
    pathParams: { path: { schema: z.string(), description: 'The file below /console/ (the route’s wildcard)' } },
    responses: {
      200: { description: 'The file', content: { 'text/javascript': { raw: 'text' }, 'text/css': { raw: 'text' }, 'image/svg+xml': { raw: 'text' }, 'image/png': { raw: 'binary' } } },
      304: { description: 'Not modified (If-None-Match)' },
      404: errorResponse('No such console file', ['not_found']),
    },
  },
];

/**
 * Routes registered on purpose without an entry: the reference page's own assets (served
 * by @fastify/swagger-ui from node_modules). Anything else Fastify registers must be in
 * the catalogue; test/openapi-routes.test.ts fails otherwise.
 */
export const UNDOCUMENTED_ROUTES: readonly { method: string; path: string }[] = [
  { method: 'HEAD', path: `${REFERENCE_PREFIX}/` }, // GET of it is registered without an onRoute call
  { method: 'GET', path: `${REFERENCE_PREFIX}/static/*` },
  { method: 'GET', path: `${REFERENCE_PREFIX}/static/index.html` },
  { method: 'GET', path: `${REFERENCE_PREFIX}/static/swagger-initializer.js` },
  { method: 'GET', path: `${REFERENCE_PREFIX}/json` },
  { method: 'GET', path: `${REFERENCE_PREFIX}/yaml` },
];
