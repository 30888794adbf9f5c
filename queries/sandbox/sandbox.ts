/**
 * Ad-hoc SQL over the analytics database: POST /v1/analytics/sql and `usage-meter sql`.
 *
 * A statement runs only after ClickHouse itself has parsed it and the policy (policy.ts)
 * has accepted its parse tree, in this order:
 *   1. `formatQuery('<sql>')`: the user's text goes in as a *string literal* in the request
 *      body (sqlStringLiteral: every `\` and `'` escaped), so it cannot be executed by this
 *      step; ClickHouse refuses anything that is not exactly one statement and gives back
 *      its canonical text. Everything after works on that text, so comments, a second
 *      statement or odd spacing cannot change what runs. Not a bound parameter: the client
 *      sends those in the URL, and 64 KiB of SQL, URL-encoded, passes a server's 128 KiB
 *      http_max_field_value_size. The literal is at most 3 bytes per UTF-16 unit, 192 KiB
 *      for maxSqlChars = 64 Ki, under the server's 256 KiB max_query_size.
 *   2. `EXPLAIN AST <canonical>`: the parse tree; EXPLAIN AST only parses.
 *   3. The policy: a SELECT reading analytics tables only, no table functions that reach
 *      elsewhere, no SETTINGS/FORMAT/INTO OUTFILE. Analytics views are checked through
 *      their own definitions, recursively.
 *   4. The query runs in a session of its own with `readonly = 2` and limits on time, rows
 *      and bytes read, result size and memory. In server mode that session is a dedicated
 *      ClickHouse user with SELECT on analytics.* only
 *      (deploy/clickhouse/users.d/analytics-reader.xml): a second, independent wall.
 * Errors from the engine are classified by their ClickHouse error type, never by text.
 *
 * Isolation between analysts (so one cannot starve the others, nor the pipeline):
 *  - admission: the session's gate (gate.ts) runs one statement at a time (embedded), lets
 *    a bounded number wait, and refuses the rest (SessionBusy → 429 + Retry-After);
 *  - cancellation: the caller passes an AbortSignal that fires when its HTTP client goes
 *    away. A waiting statement leaves the queue. A running one is killed: chdb's own
 *    `signal` only stops *waiting* for the result (the engine computes on, with no
 *    interrupt in its C ABI), but chdb has a process list, so `KILL QUERY` from the
 *    trusted client stops it within a block; each statement carries a random marker
 *    comment to find it by. In server mode the HTTP request is aborted and
 *    `cancel_http_readonly_queries_on_client_close` makes the server cancel the query;
 *  - memory: per-query max_memory_usage and max_result_bytes are a small share of the
 *    process (chdb materializes a whole result before the first byte reaches Node), and
 *    max_threads keeps cores for ingest;
 *  - the result is never parsed in Node: JSONEachRow bytes are wrapped into the JSON
 *    envelope and streamed out in slices, yielding to the event loop between slices.
 */
import { z } from 'zod';
import { randomUUID } from 'node:crypto';
import os from 'node:os';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { queryRows } from '../../lib/clickhouse.js';
import type { Config } from '../../schemas/config.js';
import { AstParseError, parseExplainAst, type AstNode } from './ast.js';
import { ANALYTICS_DB, SandboxRefusal, checkStatement, type Catalog } from './policy.js';
import { QueryAbandoned } from './gate.js';
import { jsonEnvelope, type ResultStatistics } from './stream.js';
import { schemaStatement } from './schema-statements.js';
import { readShape, type AnalyticsShape } from '../shaped-by/report.js';
import { shapeWarnings } from '../shaped-by/warnings.js';
import { shapeHeaders } from '../shaped-by/headers.js';
import { openSession, type HeldSession, type ReaderSession, type SessionCredentials } from './session.js';

export { SandboxRefusal } from './policy.js';
export { QueryAbandoned, SessionBusy } from './gate.js';

export interface SandboxLimits {
  maxExecutionTimeS: number;
  maxRowsToRead: number;
  maxBytesToRead: number;
  maxResultRows: number;
  maxResultBytes: number;
  maxMemoryBytes: number;
  /** Engine threads one query may use: the rest of the cores stay with ingest and workers. */
  maxThreads: number;
  maxSqlChars: number;
}

/**
 * Generous for anonymized aggregates, small enough that one query cannot starve ingest:
 * 256 MB of working memory and a 32 MB result (about 100,000 rows of a few columns, as
 * in-memory blocks; the JSON text is a few times that) are a small share of a process
 * that also holds ingest's buffers and the fold, and a quarter of the cores at most.
 */
export const DEFAULT_SANDBOX_LIMITS: SandboxLimits = {
  maxExecutionTimeS: 30,
  maxRowsToRead: 500_000_000,
  maxBytesToRead: 50 * 1024 ** 3,
  maxResultRows: 100_000,
  maxResultBytes: 32 * 1024 ** 2,
  maxMemoryBytes: 256 * 1024 ** 2,
  maxThreads: Math.max(1, Math.floor(os.availableParallelism() / 4)),
  maxSqlChars: 64 * 1024,
};

/** The setting each engine limit error names, and the SandboxLimits field holding its value. */
const LIMIT_VALUE: Record<string, (l: SandboxLimits) => Record<string, number>> = {
  max_execution_time: (l) => ({ max_execution_time: l.maxExecutionTimeS }),
  max_rows_to_read: (l) => ({ max_rows_to_read: l.maxRowsToRead }),
  max_bytes_to_read: (l) => ({ max_bytes_to_read: l.maxBytesToRead }),
  'max_result_rows / max_result_bytes': (l) => ({ max_result_rows: l.maxResultRows, max_result_bytes: l.maxResultBytes }),
  max_memory_usage: (l) => ({ max_memory_usage: l.maxMemoryBytes }),
};

/** Which limit an engine error type means. */
const LIMIT_BY_ERROR_TYPE: Record<string, string> = {
  TIMEOUT_EXCEEDED: 'max_execution_time',
  TOO_SLOW: 'max_execution_time',
  TOO_MANY_ROWS: 'max_rows_to_read',
  TOO_MANY_BYTES: 'max_bytes_to_read',
  TOO_MANY_ROWS_OR_BYTES: 'max_result_rows / max_result_bytes',
  MEMORY_LIMIT_EXCEEDED: 'max_memory_usage',
};

const MAX_VIEW_DEPTH = 8;
const CATALOG_TTL_MS = 30_000;

export type SandboxCredentials = SessionCredentials;

/**
 * The sandbox's own session (session.ts), whose current database is analytics, so an
 * unqualified table name can only mean an analytics table. In server mode, with the
 * credentials of the analytics reader user when given.
 */
export function openSandboxSession(
  config: Pick<Config, 'CLICKHOUSE_URL' | 'CLICKHOUSE_USER' | 'CLICKHOUSE_PASSWORD' | 'DATA_DIR'> & Partial<Pick<Config, 'SANDBOX_QUEUE_LIMIT'>>,
  credentials?: SandboxCredentials,
  limits: Partial<SandboxLimits> = {},
): Promise<ReaderSession> {
  return openSession(config, {
    database: ANALYTICS_DB,
    ...(credentials ? { credentials } : {}),
    ...(config.SANDBOX_QUEUE_LIMIT !== undefined ? { queueLimit: config.SANDBOX_QUEUE_LIMIT } : {}),
    maxRunS: limits.maxExecutionTimeS ?? DEFAULT_SANDBOX_LIMITS.maxExecutionTimeS,
  });
}

export interface Column {
  name: string;
  type: string;
}

export interface SandboxResult {
  /** The statement as ClickHouse formatted it: what actually ran. */
  sql: string;
  columns: Column[];
  rows: Record<string, unknown>[];
  rows_count: number;
  statistics: { elapsed_s: number; rows_read: number; bytes_read: number };
  /** With k configured: what shaped the answer (every hour and metric of analytics). */
  shaped_by?: AnalyticsShape;
  warnings?: string[];
}

export type SqlParams = Record<string, string | number | boolean | null>;

export type SandboxFormat = 'json' | 'csv';

/** A result on its way out: its body streams, and holds the session until it ends. */
export interface SandboxOutput {
  contentType: string;
  body: Readable;
  /** X-Analytics-* and Warning (shaped-by/headers.ts): known before the first byte. */
  headers: Record<string, string | string[]>;
}

export interface RunOptions {
  /** Fires when the caller no longer wants the result: the statement is dropped or killed. */
  signal?: AbortSignal;
}

export interface SqlSandboxOptions {
  /** The sandbox session (openSandboxSession): nothing else runs in it. */
  session: ReaderSession;
  /** A trusted client for reading the catalog (system.tables); never runs user SQL. */
  catalogClient: ClickHouseClient;
  limits?: Partial<SandboxLimits>;
  /**
   * K_ANONYMITY: with it, every answer carries what shaped it. The statement's hours are
   * not known (it is free SQL), so the figures cover all of analytics.
   */
  k?: number;
}

/** What runs after the checks: the user's SELECT (canonical), or a schema statement's replacement. */
interface Checked {
  sql: string;
  /** Set for DESCRIBE / SHOW TABLES (schema-statements.ts), whose columns are fixed. */
  columns?: Column[];
}

export class SqlSandbox {
  readonly limits: SandboxLimits;
  private catalogCache: { at: number; catalog: Promise<Catalog> } | undefined;

  constructor(private readonly opts: SqlSandboxOptions) {
    this.limits = { ...DEFAULT_SANDBOX_LIMITS, ...opts.limits };
  }

  /** Checks a statement; returns the text that would run, or throws a SandboxRefusal. */
  async check(sql: string, params: SqlParams = {}): Promise<string> {
    return (await this.opts.session.run((client) => this.checkWith(client, sql, params))).sql;
  }

  /**
   * Checks and runs a statement, streaming the result: JSON (the SandboxResult shape) or
   * CSV with a header row. Refusals, limits and engine errors are thrown before the first
   * byte, so they still become a status code.
   */
  async stream(sql: string, params: SqlParams, format: SandboxFormat, opts: RunOptions = {}): Promise<SandboxOutput> {
    const { signal } = opts;
    const held = await this.opts.session.hold(signal);
    let output: SandboxOutput;
    try {
      if (signal?.aborted) throw new QueryAbandoned();
      const checked = await this.checkWith(held.client, sql, params);
      const canonical = checked.sql;
      const runParams = checked.columns ? {} : params;
      // A schema statement reads no data: nothing shaped its answer.
      const shape = this.opts.k !== undefined && !checked.columns ? await readShape(this.opts.catalogClient, { k: this.opts.k }) : undefined;
      const headers = shape ? shapeHeaders(shape, shapeWarnings(shape)) : {};
      if (signal?.aborted) throw new QueryAbandoned();
      if (format === 'csv') {
        const result = await this.execute(held, canonical, runParams, 'CSVWithNames', { format_csv_null_representation: '' }, signal);
        output = { contentType: 'text/csv; charset=utf-8', body: result.stream, headers };
      } else {
        // The column types come from DESCRIBE, which only analyzes: the rows then travel as
        // JSONEachRow bytes that Node never has to parse.
        const columns = checked.columns ?? (await this.describe(held.client, canonical, params));
        if (signal?.aborted) throw new QueryAbandoned();
        const result = await this.execute(held, canonical, runParams, 'JSONEachRow', {}, signal);
        const statistics: ResultStatistics = {
          elapsed_s: Number(result.summary?.elapsed_ns ?? 0) / 1e9,
          rows_read: Number(result.summary?.read_rows ?? 0),
          bytes_read: Number(result.summary?.read_bytes ?? 0),
        };
        // The trailer knows the row count: an empty answer emptied by k says so in words.
        const trailer = shape ? (rows: number) => ({ shaped_by: shape, warnings: shapeWarnings(shape, { rows }) }) : undefined;
        output = { contentType: 'application/json; charset=utf-8', body: Readable.from(jsonEnvelope({ sql: canonical, columns }, result.stream, statistics, trailer)), headers };
      }
    } catch (err) {
      await held.fail();
      if (signal?.aborted) throw new QueryAbandoned();
      throw classifyEngineError(err, this.limits);
    }
    // The session stays taken until the body is out (or given up on): in embedded mode the
    // whole result sits in memory until then, so this bounds results held at once. A
    // reader too slow to take it within the time limit loses it.
    const deadline = setTimeout(() => output.body.destroy(new Error('the result was not read in time')), this.limits.maxExecutionTimeS * 1000);
    deadline.unref();
    output.body.once('close', () => {
      clearTimeout(deadline);
      held.release();
    });
    return output;
  }

  /** The whole result as an object: for the CLI and tests (the HTTP route streams). */
  async run(sql: string, params: SqlParams = {}, opts: RunOptions = {}): Promise<SandboxResult> {
    const out = await this.stream(sql, params, 'json', opts);
    const chunks: Buffer[] = [];
    for await (const chunk of out.body) chunks.push(Buffer.from(chunk as Uint8Array));
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as SandboxResult;
  }

  /** The result as CSV with a header row, and the headers an HTTP answer would carry. */
  async runCsv(sql: string, params: SqlParams = {}, opts: RunOptions = {}): Promise<{ body: Readable; headers: Record<string, string | string[]> }> {
    const out = await this.stream(sql, params, 'csv', opts);
    return { body: out.body, headers: out.headers };
  }

  /** Column names and types of the statement, without running it. */
  private async describe(client: ClickHouseClient, canonical: string, params: SqlParams): Promise<Column[]> {
    const rows = await queryRows(client, z.object({ name: z.string(), type: z.string() }), `DESCRIBE TABLE (${canonical})`, params, this.settings());
    return rows.map((r) => ({ name: r.name, type: r.type }));
  }

  /**
   * Runs the checked statement with the sandbox's limits, killing it if `signal` fires.
   * The marker comment is how KILL QUERY finds this statement and no other: a random id
   * that the SQL of other analysts cannot contain.
   */
  private async execute(held: HeldSession, canonical: string, params: SqlParams, format: string, extra: ClickHouseSettings, signal: AbortSignal | undefined) {
    const marker = `sandbox:${randomUUID()}`;
    const embedded = this.opts.session.embedded;
    let settled = false;
    const onAbort = () => {
      if (embedded) void this.kill(marker, () => settled);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await held.client.exec({
        query: `/* ${marker} */ ${canonical}\nFORMAT ${format}`,
        query_params: params,
        clickhouse_settings: {
          ...this.settings(),
          ...extra,
          // Server: an aborted HTTP request cancels the (read-only) query; and the server
          // holds the (limited) result until the query has ended, so an error becomes a
          // status here rather than text in the middle of a 200 body, and the summary
          // header carries the final statistics.
          ...(embedded ? {} : { cancel_http_readonly_queries_on_client_close: 1, wait_end_of_query: 1 }),
        },
        ...(embedded || !signal ? {} : { abort_signal: signal }),
      });
    } finally {
      settled = true;
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * KILL QUERY for the statement carrying `marker`. The kill can land before the engine
   * has registered the statement (a statement with parameters may wait in chdb's
   * process-wide queue for parameterized queries first), so it is repeated until the
   * statement has ended, however long that takes: a bounded number of attempts would let
   * a statement that starts late run to its time limit with nobody waiting for it. The
   * loop is itself bounded by max_execution_time, which ends the statement in any case.
   * The pattern is built with concat() so that the KILL's own text does not match it.
   */
  private async kill(marker: string, ended: () => boolean): Promise<void> {
    const [prefix, id] = marker.split(':') as [string, string];
    while (!ended()) {
      try {
        await this.opts.catalogClient.command({
          query: `KILL QUERY WHERE position(query, concat('${prefix}:', '${id}')) > 0 ASYNC`,
        });
      } catch {
        // best effort: the time limit still ends the statement
      }
      await sleep(100);
    }
  }

  async close(): Promise<void> {
    await this.opts.session.close();
  }

  /** readonly = 2 and the limits, on every statement the sandbox session runs. */
  private settings(): ClickHouseSettings {
    const l = this.limits;
    return {
      readonly: '2',
      allow_ddl: 0,
      allow_introspection_functions: 0,
      max_execution_time: l.maxExecutionTimeS,
      timeout_overflow_mode: 'throw',
      // Times as RFC 3339 with Z, like every other answer of the API.
      date_time_output_format: 'iso',
      max_rows_to_read: String(l.maxRowsToRead),
      max_bytes_to_read: String(l.maxBytesToRead),
      read_overflow_mode: 'throw',
      max_result_rows: String(l.maxResultRows),
      max_result_bytes: String(l.maxResultBytes),
      result_overflow_mode: 'throw',
      max_memory_usage: String(l.maxMemoryBytes),
      // The cap on cores is the sandbox's only CPU control. Not os_thread_priority: with
      // CAP_SYS_NICE the engine renices the threads that run the query, and embedded
      // those are shared with everything else in this process: the libuv worker that
      // calls into chdb (also fs, zlib and the pipeline's own queries) and the engine's
      // global pool threads that later run billing inserts and rollups. After a killed
      // query pool threads were seen still at nice 19; the reset is not ours to ensure.
      max_threads: l.maxThreads,
    };
  }

  private async checkWith(client: ClickHouseClient, sql: string, params: SqlParams): Promise<Checked> {
    if (sql.trim() === '') throw new SandboxRefusal('sql_empty', 'the SQL is empty');
    if (sql.length > this.limits.maxSqlChars) {
      throw new SandboxRefusal('sql_too_long', `the SQL is ${sql.length} characters; the limit is ${this.limits.maxSqlChars}`);
    }
    const canonical = await this.format(client, sql);
    // DESCRIBE / SHOW TABLES: recognized, then replaced by a statement of our own.
    const root = await this.explainAst(client, canonical, params);
    const schema = schemaStatement(root, canonical, await this.catalog());
    if (schema) return schema;
    await this.checkTree(client, canonical, params, new Set(), 0, root);
    return { sql: canonical };
  }

  /** Step 1: one statement, canonical text; the SQL travels as a string literal in the body. */
  private async format(client: ClickHouseClient, sql: string): Promise<string> {
    try {
      const [row] = await queryRows(client, z.object({ q: z.string() }), `SELECT formatQuery(${sqlStringLiteral(sql)}) AS q`, {}, this.settings());
      if (!row) throw new SandboxRefusal('sql_syntax_error', 'ClickHouse could not parse the SQL');
      return row.q;
    } catch (err) {
      if (err instanceof SandboxRefusal) throw err;
      throw new SandboxRefusal('sql_syntax_error', engineMessage(err), { engine_error: engineType(err) });
    }
  }

  /** Steps 2–3, for the statement and then for each analytics view it reads. */
  private async checkTree(client: ClickHouseClient, sql: string, params: SqlParams, seenViews: Set<string>, depth: number, parsed?: AstNode): Promise<void> {
    const root = parsed ?? (await this.explainAst(client, sql, params));
    const catalog = await this.catalog();
    const { views } = checkStatement(root, catalog);
    for (const view of views) {
      if (seenViews.has(view)) continue;
      seenViews.add(view);
      if (depth >= MAX_VIEW_DEPTH) throw new SandboxRefusal('sql_table_refused', `analytics.${view}: views nest too deeply to check`, { view });
      try {
        const definition = await this.viewDefinition(view);
        await this.checkTree(client, await this.format(client, definition), {}, seenViews, depth + 1);
      } catch (err) {
        if (!(err instanceof SandboxRefusal)) throw err;
        const code = err.code === 'sql_syntax_error' || err.code === 'sql_missing_parameter' ? 'sql_table_refused' : err.code;
        throw new SandboxRefusal(code, `through the view analytics.${view}: ${err.message}`, { ...err.details, view: `analytics.${view}` });
      }
    }
  }

  private async explainAst(client: ClickHouseClient, sql: string, params: SqlParams) {
    let text = '';
    try {
      // exec, not query: the client must not append a FORMAT, which would belong to the
      // explained statement; the output format is chosen by default_format instead.
      const result = await client.exec({
        query: `EXPLAIN AST ${sql}`,
        query_params: params,
        clickhouse_settings: { ...this.settings(), default_format: 'TabSeparatedRaw' },
      });
      for await (const chunk of result.stream) text += chunk.toString();
    } catch (err) {
      // EXPLAIN applies the statement's own SETTINGS clause; in the read-only session a
      // forbidden change fails here, before the tree is read.
      if (engineType(err) === 'READONLY') {
        throw new SandboxRefusal('sql_settings_refused', `SETTINGS clauses are not allowed: the sandbox sets its own limits (${engineMessage(err)})`, { clause: 'SETTINGS' });
      }
      if (engineType(err) === 'UNKNOWN_QUERY_PARAMETER') {
        throw new SandboxRefusal('sql_missing_parameter', `${engineMessage(err)}: pass it in params`, { engine_error: 'UNKNOWN_QUERY_PARAMETER' });
      }
      throw new SandboxRefusal('sql_statement_refused', `only SELECT queries may run here (${engineMessage(err)})`, { engine_error: engineType(err) });
    }
    try {
      return parseExplainAst(text);
    } catch (err) {
      if (err instanceof AstParseError) throw new SandboxRefusal('sql_statement_refused', err.message);
      throw err;
    }
  }

  private async viewDefinition(view: string): Promise<string> {
    const [row] = await queryRows(
      this.opts.catalogClient,
      z.object({ as_select: z.string() }),
      'SELECT as_select FROM system.tables WHERE database = {db:String} AND name = {name:String}',
      { db: ANALYTICS_DB, name: view },
    );
    if (!row?.as_select) throw new SandboxRefusal('sql_table_refused', `analytics.${view} is a view whose definition cannot be read`, { view });
    return row.as_select;
  }

  private catalog(): Promise<Catalog> {
    if (!this.catalogCache || Date.now() - this.catalogCache.at > CATALOG_TTL_MS) {
      const catalog = loadCatalog(this.opts.catalogClient);
      catalog.catch(() => (this.catalogCache = undefined)); // a failed read is not cached
      this.catalogCache = { at: Date.now(), catalog };
    }
    return this.catalogCache.catalog;
  }
}

async function loadCatalog(ch: ClickHouseClient): Promise<Catalog> {
  const [tables, databases, functions] = await Promise.all([
    queryRows(ch, z.object({ name: z.string(), engine: z.string() }), 'SELECT name, engine FROM system.tables WHERE database = {db:String}', { db: ANALYTICS_DB }),
    queryRows(ch, z.object({ name: z.string() }), 'SELECT name FROM system.databases'),
    queryRows(ch, z.object({ name: z.string() }), 'SELECT lower(name) AS name FROM system.table_functions'),
  ]);
  return {
    tables: new Map(tables.map((t) => [t.name, t.engine])),
    databases: new Set(databases.map((d) => d.name)),
    tableFunctions: new Set(functions.map((f) => f.name)),
  };
}

function engineType(err: unknown): string | undefined {
  const type = (err as { type?: unknown }).type;
  return typeof type === 'string' ? type : undefined;
}

/** The engine's message without its `Code: N. DB::Exception:` prefix and stack. */
function engineMessage(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg
    .replace(/^Code: \d+\. DB::Exception: /, '')
    .replace(/\s*\(version [^)]*\)\s*$/, '')
    // The scope of our own formatQuery() wrapper says nothing about the user's SQL.
    .replace(/[.\s:]*In scope SELECT formatQuery\([\s\S]*$/, '')
    .trim();
}

/** The limit an engine error says was exceeded, if it is such an error. */
export function exceededLimit(err: unknown): string | undefined {
  const type = engineType(err);
  return type ? LIMIT_BY_ERROR_TYPE[type] : undefined;
}

/** An engine error after the policy accepted the statement: a limit, or a plain error. */
export function classifyEngineError(err: unknown, limits?: SandboxLimits): SandboxRefusal | Error {
  if (err instanceof SandboxRefusal || err instanceof QueryAbandoned) return err;
  const type = engineType(err);
  if (!type) return err instanceof Error ? err : new Error(String(err));
  const limit = LIMIT_BY_ERROR_TYPE[type];
  if (limit) {
    const values = limits ? LIMIT_VALUE[limit]?.(limits) : undefined;
    return new SandboxRefusal('sql_limit_exceeded', `the query exceeded the sandbox's ${limit} limit: ${engineMessage(err)}`, {
      limit,
      engine_error: type,
      ...(values ? { values } : {}),
    });
  }
  if (type === 'READONLY') return new SandboxRefusal('sql_write_refused', `the sandbox is read-only: ${engineMessage(err)}`, { engine_error: type });
  if (type === 'ACCESS_DENIED') return new SandboxRefusal('sql_table_refused', `the analytics reader may not read this: ${engineMessage(err)}`, { engine_error: type });
  if (type === 'UNKNOWN_QUERY_PARAMETER') return new SandboxRefusal('sql_missing_parameter', engineMessage(err), { engine_error: type });
  return new SandboxRefusal('sql_query_failed', engineMessage(err), { engine_error: type });
}

/**
 * `text` as a ClickHouse string literal. Inside single quotes only the backslash (the
 * escape introducer) and the quote (the delimiter) can end or alter the literal; both are
 * escaped, every other character (newlines, NUL, any UTF-8) stands for itself.
 */
export function sqlStringLiteral(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}
