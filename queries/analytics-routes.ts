/**
 * The analytics side of the HTTP API: what capacity planners and data scientists pull.
 * Everything here reads the analytics database only.
 *
 *   GET  /v1/analytics/queries              planner      the named queries and their parameters
 *   GET  /v1/analytics/queries/:name?…      planner      run one (JSON, or format=csv)
 *   POST /v1/analytics/sql                  planner      ad-hoc read-only SQL (sandbox/)
 *   GET  /v1/analytics/tables               planner      the analytics tables and views, with columns
 *   GET  /v1/analytics/datasets             datascience  the training datasets
 *   GET  /v1/analytics/datasets/:name?…     datascience  one, as Parquet (default) or CSV, streamed
 *   GET  /v1/analytics/datasets/:name/card  datascience  its data card for the same parameters
 *
 * Every answer says what shaped it (shaped-by/): k, the resources its hours had generalized
 * or suppressed, and the history it needs against the history there is. JSON answers carry
 * it as `shaped_by` and `warnings`; every answer, streamed ones too, as X-Analytics-* and
 * Warning headers (shaped-by/headers.ts).
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { KeyRing } from '../lib/auth.js';
import type { ClickHouseClient } from '../lib/clickhouse.js';
import { sendError } from '../lib/http-errors.js';
import type { Config } from '../schemas/config.js';
import { capacityQueries, describeQuery, findQuery, namedQueryCsv, namedQueryShape, namedQueryWarnings, resolveQueryParams, runNamedQuery } from './capacity/library.js';
import { listAnalyticsTables } from './analytics-tables.js';
import { shapeHeaders } from './shaped-by/headers.js';
import { describeParam } from './capacity/sql-file.js';
import { DATASET_FORMATS, datasetCard, datasetFileName, datasets, datasetShape, datasetStream, describeDataset, findDataset, resolveDatasetParams, type DatasetFormat } from './datasets/datasets.js';
import { shapeWarnings } from './shaped-by/warnings.js';
import { QueryAbandoned, SandboxRefusal, SessionBusy, SqlSandbox, exceededLimit, openSandboxSession, type SandboxCredentials, type SandboxLimits } from './sandbox/sandbox.js';
import { openSession, type ReaderSession } from './sandbox/session.js';

export interface AnalyticsRouteDeps {
  /** The pipeline's client: only the sandbox's catalogue (system.tables) is read with it. */
  ch: ClickHouseClient;
  keys: KeyRing;
  /** Where the consumers' own sessions open (sandbox/session.ts), and k for data cards. */
  config: Pick<Config, 'CLICKHOUSE_URL' | 'CLICKHOUSE_USER' | 'CLICKHOUSE_PASSWORD' | 'DATA_DIR' | 'K_ANONYMITY'> & Partial<Pick<Config, 'SANDBOX_QUEUE_LIMIT'>>;
  /** Server mode: the ClickHouse user with SELECT on analytics.* only (deploy/clickhouse/users.d). */
  sandboxCredentials?: SandboxCredentials;
  sandboxLimits?: Partial<SandboxLimits>;
}

export const sqlRequestSchema = z
  .object({
    sql: z.string({ error: 'sql must be a string holding one SELECT statement' }),
    params: z
      .record(
        z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'parameter names are letters, digits and _'),
        z.union([z.string().max(4096), z.number(), z.boolean(), z.null()]),
      )
      .optional(),
    format: z.enum(['json', 'csv']).default('json'),
  })
  .strict();

export function registerAnalyticsRoutes(app: FastifyInstance, deps: AnalyticsRouteDeps): void {
  const planner = { preHandler: deps.keys.require('planner') };
  const scientist = { preHandler: deps.keys.require('datascience') };

  // Two sessions of their own, opened on first use and closed with the server: one for
  // the trusted SQL of named queries and datasets, one for ad-hoc SQL.
  const lazy = <T extends { close(): Promise<void> }>(open: () => Promise<T>) => {
    let opened: Promise<T> | undefined;
    const get = () => {
      opened ??= open();
      opened.catch(() => (opened = undefined)); // retried by the next request
      return opened;
    };
    app.addHook('onClose', async () => {
      const it = await opened?.catch(() => undefined);
      await it?.close();
    });
    return get;
  };
  const queueLimit = deps.config.SANDBOX_QUEUE_LIMIT;
  const reader: () => Promise<ReaderSession> = lazy(() => openSession(deps.config, queueLimit !== undefined ? { queueLimit } : {}));
  const sandbox = lazy(async () =>
    new SqlSandbox({
      session: await openSandboxSession(deps.config, deps.sandboxCredentials, deps.sandboxLimits),
      catalogClient: deps.ch,
      k: deps.config.K_ANONYMITY,
      ...(deps.sandboxLimits ? { limits: deps.sandboxLimits } : {}),
    }),
  );

  app.get('/v1/analytics/queries', planner, async () => ({ queries: capacityQueries().map(describeQuery) }));

  // A query is named by itself (`fleet-size`) or with its library, as the listing shows it
  // (`capacity/fleet-size`): both paths run it.
  const runQuery = async (name: string, query: Record<string, unknown>, reply: FastifyReply) => {
    const q = findQuery(name);
    if (!q) return sendError(reply, 404, 'unknown_query', `no named query ${name}; GET /v1/analytics/queries lists them`);
    const { format = 'json', ...raw } = query;
    if (format !== 'json' && format !== 'csv') return sendError(reply, 400, 'invalid_params', 'format must be json or csv');
    const params = resolveQueryParams(q, raw);
    if ('error' in params) return sendError(reply, 400, 'invalid_params', params.error, { params: q.params.map(describeParam) });
    const session = await reader();
    const k = deps.config.K_ANONYMITY;
    try {
      if (format === 'csv') {
        // The rows are streamed: the shape goes first, in the headers.
        const { shape, body } = await session.run(async (ch) => ({ shape: await namedQueryShape(ch, q, params, { k }), body: await namedQueryCsv(ch, q, params) }));
        return reply.headers(shapeHeaders(shape, namedQueryWarnings(q, shape))).type('text/csv; charset=utf-8').send(body);
      }
      const result = await session.run((ch) => runNamedQuery(ch, q, params, { k }));
      return reply.headers(shapeHeaders(result.shaped_by, result.warnings)).send(result);
    } catch (err) {
      return tooBig(reply, err);
    }
  };
  app.get<{ Params: { name: string }; Querystring: Record<string, unknown> }>('/v1/analytics/queries/:name', planner, (req, reply) => runQuery(req.params.name, req.query, reply));
  app.get<{ Params: { library: string; name: string }; Querystring: Record<string, unknown> }>('/v1/analytics/queries/:library/:name', planner, (req, reply) =>
    runQuery(`${req.params.library}/${req.params.name}`, req.query, reply),
  );

  app.post<{ Body: unknown }>('/v1/analytics/sql', planner, async (req, reply) => {
    // A text/plain body is the SQL itself.
    const parsed = sqlRequestSchema.safeParse(typeof req.body === 'string' ? { sql: req.body } : req.body);
    if (!parsed.success) {
      return sendError(reply, 400, 'invalid_request', parsed.error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; '));
    }
    const { sql, params = {}, format } = parsed.data;
    // The client going away (before or while the query runs) drops or kills the query:
    // nobody would read its result, and others may be waiting for the session.
    // A client that left while the body was read or the key checked has already closed
    // the response: no 'close' event is still to come for it.
    const gone = new AbortController();
    if (reply.raw.destroyed || req.raw.socket.destroyed) gone.abort();
    else {
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) gone.abort();
      });
    }
    try {
      const sb = await sandbox();
      const out = await sb.stream(sql, params, format, { signal: gone.signal });
      return reply.headers(out.headers).type(out.contentType).send(out.body);
    } catch (err) {
      if (err instanceof SandboxRefusal) return refuse(reply, err);
      if (err instanceof SessionBusy) return busy(reply, err);
      if (err instanceof QueryAbandoned) return sendError(reply, 499, 'client_closed', err.message); // nobody is listening
      throw err;
    }
  });

  app.get('/v1/analytics/tables', planner, async (_req, reply) => {
    try {
      return { database: 'analytics', tables: await (await reader()).run((ch) => listAnalyticsTables(ch)) };
    } catch (err) {
      if (err instanceof SessionBusy) return busy(reply, err);
      throw err;
    }
  });

  app.get('/v1/analytics/datasets', scientist, async () => ({ datasets: datasets().map(describeDataset) }));

  app.get<{ Params: { name: string }; Querystring: Record<string, unknown> }>('/v1/analytics/datasets/:name', scientist, async (req, reply) => {
    const ds = findDataset(req.params.name);
    if (!ds) return sendError(reply, 404, 'unknown_dataset', `no dataset ${req.params.name}; GET /v1/analytics/datasets lists them`);
    const { format = 'parquet', ...raw } = req.query;
    if (typeof format !== 'string' || !(format in DATASET_FORMATS)) return sendError(reply, 400, 'invalid_params', 'format must be parquet or csv');
    const fmt = format as DatasetFormat;
    const params = resolveDatasetParams(ds, raw);
    if ('error' in params) return sendError(reply, 400, 'invalid_params', params.error, { params: ds.params.map(describeParam) });
    const card = `/v1/analytics/datasets/${ds.name}/card?${new URLSearchParams(raw as Record<string, string>).toString()}`;
    let stream;
    let shape;
    try {
      ({ shape, stream } = await (await reader()).run(async (ch) => ({
        shape: await datasetShape(ch, params, { k: deps.config.K_ANONYMITY }),
        stream: await datasetStream(ch, ds, params, fmt),
      })));
    } catch (err) {
      return tooBig(reply, err);
    }
    return reply
      .headers(shapeHeaders(shape, shapeWarnings(shape)))
      .header('content-type', DATASET_FORMATS[fmt].contentType)
      .header('content-disposition', `attachment; filename="${datasetFileName(ds, params, fmt)}"`)
      .header('link', `<${card}>; rel="describedby"`)
      .header('x-dataset-schema-version', String(ds.schemaVersion))
      .send(stream);
  });

  app.get<{ Params: { name: string }; Querystring: Record<string, unknown> }>('/v1/analytics/datasets/:name/card', scientist, async (req, reply) => {
    const ds = findDataset(req.params.name);
    if (!ds) return sendError(reply, 404, 'unknown_dataset', `no dataset ${req.params.name}; GET /v1/analytics/datasets lists them`);
    const { format: _ignored, ...raw } = req.query;
    const params = resolveDatasetParams(ds, raw);
    if ('error' in params) return sendError(reply, 400, 'invalid_params', params.error, { params: ds.params.map(describeParam) });
    try {
      return await (await reader()).run((ch) => datasetCard(ch, ds, params, { k: deps.config.K_ANONYMITY }));
    } catch (err) {
      if (err instanceof SessionBusy) return busy(reply, err);
      throw err;
    }
  });
}



/** A named query or dataset over one of its limits (a range too wide) is the caller's to narrow. */
function tooBig(reply: FastifyReply, err: unknown) {
  if (err instanceof SessionBusy) return busy(reply, err);
  const limit = exceededLimit(err);
  if (!limit) throw err;
  return sendError(reply, 422, 'query_limit_exceeded', `the query exceeded its ${limit} limit: narrow the time range`, { limit });
}

/** The session's wait queue is full (SANDBOX_QUEUE_LIMIT): come back later. */
function busy(reply: FastifyReply, err: SessionBusy) {
  reply.header('retry-after', String(err.retryAfterS));
  return sendError(reply, 429, 'analytics_busy', err.message, { queue_limit: err.queueLimit, retry_after_s: err.retryAfterS });
}

function refuse(reply: FastifyReply, err: SandboxRefusal) {
  return sendError(reply, err.status, err.code, err.message, err.details);
}
