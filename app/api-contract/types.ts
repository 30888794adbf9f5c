/**
 * The route catalogue's vocabulary: one RouteDoc per method and path the server registers.
 * The catalogue (this folder) is the one place the HTTP contract is written down; the
 * OpenAPI document (app/openapi.ts) is generated from it, and the tests check it against
 * what Fastify really registers and what the routes really answer (test/openapi-*.test.ts).
 *
 * Schemas are the zod schemas the routes themselves validate with (exported from their
 * modules) and the response schemas of schemas/api/: nothing is restated here.
 */
import type { z } from 'zod';
import type { KeyRole } from '../../schemas/config.js';

export type Method = 'GET' | 'POST' | 'DELETE';

/** Who may call: key roles (any of them), any valid key, or no key at all. */
export type Access = { roles: readonly KeyRole[] } | 'any key' | 'public';

export interface MediaDoc {
  /** Absent: the body is not JSON (CSV, Parquet, Prometheus text, HTML, …). */
  schema?: z.ZodType;
  /** For non-JSON bodies, how it looks: `{ type: 'string' }` or `{ type: 'string', format: 'binary' }`. */
  raw?: 'text' | 'binary';
  example?: unknown;
}

export interface HeaderDoc {
  description: string;
  schema: z.ZodType;
  required?: boolean;
}

export interface ResponseDoc {
  description: string;
  /** By media type (no parameters): `application/json`, `text/csv`, … */
  content?: Record<string, MediaDoc>;
  headers?: Record<string, HeaderDoc>;
}

export interface ParamDoc {
  schema: z.ZodType;
  description: string;
}

export interface RouteDoc {
  method: Method;
  /** As Fastify registers it: `/v1/accounts/:account/usage`; a trailing `*` is the path parameter `path`. */
  path: string;
  operationId: string;
  tag: 'ingest' | 'quarantine' | 'billing' | 'privacy' | 'analytics' | 'operations' | 'console';
  summary: string;
  description?: string;
  access: Access;
  /** The per-key limit the route is under (lib/rate-limit.ts): 429 + Retry-After beyond it. */
  rateLimit?: 'ingest' | 'analytics';
  pathParams?: Record<string, ParamDoc>;
  /** The strict zod object the route parses its query with: each key becomes a parameter. */
  query?: z.ZodObject;
  /** What each query parameter means (the schemas say what is valid, not why). */
  queryDocs?: Record<string, string>;
  /** Query parameters the route reads outside `query` (e.g. `format`). */
  extraQuery?: Record<string, ParamDoc & { required?: boolean; style?: 'form'; explode?: boolean }>;
  headers?: Record<string, HeaderDoc>;
  body?: { description: string; required: boolean; content: Record<string, MediaDoc> };
  /** Besides the 401/403/429/500/503 every keyed route may answer (added by the builder). */
  responses: Record<number, ResponseDoc>;
}
