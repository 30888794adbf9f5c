/**
 * The OpenAPI 3.1 document of the whole HTTP API, generated from the route catalogue
 * (app/api-contract/) and the zod schemas it names, with zod's own JSON Schema output
 * (`z.toJSONSchema`, draft 2020-12, which is OpenAPI 3.1's schema dialect). Nothing in
 * it is written twice: a rule changed in a route's schema changes the document.
 *
 * Roles: each operation's security requirement names the key roles it admits (OpenAPI
 * 3.1 lets a non-OAuth requirement list role names), and `x-role` repeats them as a
 * plain list ([] = no key needed) for tools that read extensions more easily.
 */
import { z } from 'zod';
import { KEY_ROLES } from '../schemas/config.js';
import { apiErrorSchema } from '../schemas/api/common.js';
import type { ApiErrorBody } from '../lib/http-errors.js';
import { ROUTE_CATALOGUE, type RouteDoc } from './api-contract/index.js';
import type { MediaDoc, ResponseDoc } from './api-contract/types.js';
import { errorResponse, retryLater } from './api-contract/common.js';
import { isInFlightBounded } from './api-in-flight.js';

// The error schema describes exactly what lib/http-errors.ts builds: a drift fails to compile.
const _errorShapePinned: z.ZodType<ApiErrorBody> = apiErrorSchema;
void _errorShapePinned;

type Json = Record<string, unknown>;
export type OpenApiDocument = Json & { openapi: string; paths: Record<string, Record<string, Json>>; components: { schemas: Record<string, Json>; securitySchemes: Json } };

export const SECURITY_SCHEME = 'apiKey';

/** Fastify's `/v1/x/:id/*` → OpenAPI's `/v1/x/{id}/{path}`. */
export function openApiPath(fastifyPath: string): string {
  return fastifyPath.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}').replace(/\/\*$/, '/{path}');
}

/** The roles a route admits ([] = public), as its preHandler checks them. */
export function rolesOf(route: Pick<RouteDoc, 'access'>): readonly string[] {
  if (route.access === 'public') return [];
  if (route.access === 'any key') return KEY_ROLES;
  return route.access.roles;
}

/** Converts zod schemas, hoisting every schema with a meta id into components.schemas. */
class SchemaSink {
  readonly components: Record<string, Json> = {};

  toJson(schema: z.ZodType, io: 'input' | 'output'): Json {
    const out = z.toJSONSchema(schema, { io, target: 'draft-2020-12', unrepresentable: 'any' }) as Json;
    delete out.$schema;
    const defs = (out.$defs ?? {}) as Record<string, Json>;
    delete out.$defs;
    const rewrite = (node: Json) => this.finish(node, io);
    for (const [id, def] of Object.entries(defs)) {
      const json = rewrite(def);
      const known = this.components[id];
      if (known && JSON.stringify(known) !== JSON.stringify(json)) throw new Error(`schema id ${id} is used for two different schemas (or as request and response)`);
      this.components[id] = json;
    }
    return rewrite(out);
  }

  /**
   * $refs into components; for responses, no `additionalProperties: false`: the response
   * schemas are strict so the contract test sees an undocumented field, but a client must
   * accept fields added later (payloads grow by adding fields).
   */
  private finish(node: Json, io: 'input' | 'output'): Json {
    const walk = (v: unknown): unknown => {
      if (Array.isArray(v)) return v.map(walk);
      if (!v || typeof v !== 'object') return v;
      const o: Json = {};
      for (const [k, x] of Object.entries(v as Json)) {
        if (k === '$ref' && typeof x === 'string') o[k] = x.replace('#/$defs/', '#/components/schemas/');
        else if (k === 'additionalProperties' && x === false && io === 'output') continue;
        else o[k] = walk(x);
      }
      return o;
    };
    return walk(node) as Json;
  }
}

function media(sink: SchemaSink, m: MediaDoc, io: 'input' | 'output'): Json {
  const out: Json = {};
  if (m.raw) {
    out.schema = m.raw === 'binary' ? { type: 'string', format: 'binary' } : { type: 'string' };
    // NDJSON: the schema of each line (a Media Type Object has no field for it in 3.1).
    if (m.schema) out['x-line-schema'] = sink.toJson(m.schema, io);
  } else if (m.schema) out.schema = sink.toJson(m.schema, io);
  if (m.example !== undefined) out.example = m.example;
  return out;
}

function response(sink: SchemaSink, r: ResponseDoc): Json {
  const out: Json = { description: r.description };
  if (r.headers) {
    out.headers = Object.fromEntries(Object.entries(r.headers).map(([name, h]) => [name, { description: h.description, schema: sink.toJson(h.schema, 'output') }]));
  }
  if (r.content) out.content = Object.fromEntries(Object.entries(r.content).map(([type, m]) => [type, media(sink, m, 'output')]));
  return out;
}

/** The responses every route may give besides its own: key refusals, limits, outages. */
export function responsesOf(route: RouteDoc): Record<number, ResponseDoc> {
  const keyed = route.access !== 'public';
  const common: Record<number, ResponseDoc> = { 500: errorResponse('An internal error; the request can be retried', ['internal']) };
  if (keyed) {
    common[401] = errorResponse('No valid API key: send Authorization: Bearer <key>', ['unauthorized']);
    common[403] = errorResponse(`The key's role may not call this (it needs ${rolesOf(route).join(' or ')})`, ['forbidden']);
    common[503] = isInFlightBounded(route.path)
      ? retryLater('Redis is unavailable, or this process already has API_MAX_IN_FLIGHT billing and privacy requests in progress; nothing was changed', ['redis_unavailable', 'api_busy'])
      : retryLater('Redis is unavailable; nothing was changed', ['redis_unavailable']);
  }
  if (route.rateLimit) common[429] = retryLater(`Over the per-key ${route.rateLimit} request rate`, ['rate_limited']);
  return { ...common, ...route.responses }; // a route's own answer for a status says more
}

function operation(sink: SchemaSink, route: RouteDoc): Json {
  const parameters: Json[] = [];
  for (const [name, p] of Object.entries(route.pathParams ?? {})) {
    parameters.push({ name, in: 'path', required: true, description: p.description, schema: sink.toJson(p.schema, 'input') });
  }
  if (route.query) {
    const json = sink.toJson(route.query, 'input');
    const required = new Set((json.required as string[] | undefined) ?? []);
    for (const [name, schema] of Object.entries((json.properties ?? {}) as Record<string, Json>)) {
      const description = route.queryDocs?.[name];
      parameters.push({ name, in: 'query', required: required.has(name), ...(description ? { description } : {}), schema });
    }
  }
  for (const [name, p] of Object.entries(route.extraQuery ?? {})) {
    const { schema, description, required, ...style } = p;
    parameters.push({ name, in: 'query', required: required ?? false, description, schema: sink.toJson(schema, 'input'), ...style });
  }
  for (const [name, h] of Object.entries(route.headers ?? {})) {
    parameters.push({ name, in: 'header', required: h.required ?? false, description: h.description, schema: sink.toJson(h.schema, 'input') });
  }
  const roles = rolesOf(route);
  const op: Json = {
    operationId: route.operationId,
    tags: [route.tag],
    summary: route.summary,
    ...(route.description ? { description: route.description } : {}),
    security: route.access === 'public' ? [] : route.access === 'any key' ? [{ [SECURITY_SCHEME]: [] }] : roles.map((role) => ({ [SECURITY_SCHEME]: [role] })),
    'x-role': roles,
    ...(route.rateLimit ? { 'x-rate-limit': route.rateLimit } : {}),
    ...(parameters.length ? { parameters } : {}),
  };
  if (route.body) {
    op.requestBody = {
      description: route.body.description,
      required: route.body.required,
      content: Object.fromEntries(Object.entries(route.body.content).map(([type, m]) => [type, media(sink, m, 'input')])),
    };
  }
  op.responses = Object.fromEntries(
    Object.entries(responsesOf(route))
      .sort(([a], [b]) => Number(a) - Number(b))
      .map(([status, r]) => [status, response(sink, r)]),
  );
  return op;
}

const DESCRIPTION = `Exact usage metering and anonymized fleet analytics.

**Keys.** Every /v1 route needs an API key of a role: \`Authorization: Bearer <key>\`. Roles: producer (sends samples), billing (usage, exports, quarantine), planner (named queries, read-only SQL), datascience (training datasets), privacy (access export, erasure, audit). Each operation lists the roles it admits (its security requirement, and \`x-role\`). No key: 401; a key of another role: 403.

**Errors** always have one shape: \`{ "error": { "code", "message", "details"? } }\`; branch on \`code\`.

**Exact numbers.** Quantities and totals are decimal strings: never parse them into a binary float on the way to a bill.

**Limits.** Every list and body is bounded; beyond a bound the answer is 413, 429 or 503 with \`Retry-After\`, never a 5xx.

**Compatibility.** Responses grow by adding fields: clients must ignore fields they do not know.`;

const TAGS = [
  { name: 'ingest', description: 'Sending usage samples (producer keys)' },
  { name: 'quarantine', description: 'Rows the engine refused for good, kept visible until replayed or discarded (billing keys)' },
  { name: 'billing', description: 'Exact usage per account and billing period (billing keys)' },
  { name: 'privacy', description: 'Access, portability, erasure and the audit trail (privacy keys)' },
  { name: 'analytics', description: 'Anonymized fleet analytics: named queries, read-only SQL, training datasets (planner and datascience keys)' },
  { name: 'operations', description: 'Health, readiness, metrics, status and this reference' },
  { name: 'console', description: 'The web console’s static files' },
];

export function buildOpenApiDocument(opts: { version?: string } = {}): OpenApiDocument {
  const sink = new SchemaSink();
  const paths: Record<string, Record<string, Json>> = {};
  for (const route of ROUTE_CATALOGUE) {
    const path = openApiPath(route.path);
    const method = route.method.toLowerCase();
    if (paths[path]?.[method]) throw new Error(`the catalogue lists ${route.method} ${route.path} twice`);
    (paths[path] ??= {})[method] = operation(sink, route);
  }
  return {
    openapi: '3.1.1',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: { title: 'usage-meter HTTP API', version: opts.version ?? '1', description: DESCRIPTION, license: { name: 'Apache-2.0', identifier: 'Apache-2.0' } },
    servers: [{ url: '/', description: 'The server this document was fetched from' }],
    tags: TAGS,
    paths,
    components: {
      schemas: sink.components,
      securitySchemes: {
        [SECURITY_SCHEME]: { type: 'http', scheme: 'bearer', description: 'An API key of one role (API_KEYS, or the generated <data dir>/api-keys.json)' },
      },
    },
  };
}
