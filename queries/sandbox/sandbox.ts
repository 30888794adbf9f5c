/**
 * Ad-hoc SQL over the analytics database: POST /v1/analytics/sql and `usage-meter sql`.
 *
 * A statement runs only after ClickHouse itself has parsed it and the policy (policy.ts)
 * has accepted its parse tree, in this order:
 *   1. `formatQuery({sql:String})`: the user's text goes in as a *bound parameter*, so it
 *      cannot be executed by this step; ClickHouse refuses anything that is not exactly one
 *      statement and gives back its canonical text. Everything after works on that text,
 *      so comments, a second statement or odd spacing cannot change what runs.
 *   2. `EXPLAIN AST <canonical>`: the parse tree; EXPLAIN AST only parses.
 *   3. The policy: a SELECT reading analytics tables only, no table functions that reach
 *      elsewhere, no SETTINGS/FORMAT/INTO OUTFILE. Analytics views are checked through
 *      their own definitions, recursively.
 *   4. The query runs in a session of its own with `readonly = 2` and limits on time, rows
 *      and bytes read, result size and memory. In server mode that session is a dedicated
 *      ClickHouse user with SELECT on analytics.* only
 *      (deploy/clickhouse/users.d/analytics-reader.xml): a second, independent wall.
 * Errors from the engine are classified by their ClickHouse error type, never by text.
 */
import type { Readable } from 'node:stream';
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { queryRows } from '../../lib/clickhouse.js';
import type { Config } from '../../schemas/config.js';
import { AstParseError, parseExplainAst } from './ast.js';
import { ANALYTICS_DB, SandboxRefusal, checkStatement, type Catalog } from './policy.js';
import { openSession, type ReaderSession, type SessionCredentials } from './session.js';

export { SandboxRefusal } from './policy.js';

export interface SandboxLimits {
  maxExecutionTimeS: number;
  maxRowsToRead: number;
  maxBytesToRead: number;
  maxResultRows: number;
  maxResultBytes: number;
  maxMemoryBytes: number;
  maxSqlChars: number;
}

/** Generous for anonymized aggregates, small enough that one query cannot starve ingest. */
export const DEFAULT_SANDBOX_LIMITS: SandboxLimits = {
  maxExecutionTimeS: 30,
  maxRowsToRead: 500_000_000,
  maxBytesToRead: 50 * 1024 ** 3,
  maxResultRows: 100_000,
  maxResultBytes: 256 * 1024 ** 2,
  maxMemoryBytes: 4 * 1024 ** 3,
  maxSqlChars: 64 * 1024,
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
  config: Pick<Config, 'CLICKHOUSE_URL' | 'CLICKHOUSE_USER' | 'CLICKHOUSE_PASSWORD' | 'DATA_DIR'>,
  credentials?: SandboxCredentials,
): Promise<ReaderSession> {
  return openSession(config, { database: ANALYTICS_DB, ...(credentials ? { credentials } : {}) });
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
}

export type SqlParams = Record<string, string | number | boolean | null>;

export interface SqlSandboxOptions {
  /** The sandbox session (openSandboxSession): nothing else runs in it. */
  session: ReaderSession;
  /** A trusted client for reading the catalog (system.tables); never runs user SQL. */
  catalogClient: ClickHouseClient;
  limits?: Partial<SandboxLimits>;
}

export class SqlSandbox {
  readonly limits: SandboxLimits;
  private catalogCache: { at: number; catalog: Promise<Catalog> } | undefined;

  constructor(private readonly opts: SqlSandboxOptions) {
    this.limits = { ...DEFAULT_SANDBOX_LIMITS, ...opts.limits };
  }

  /** Checks a statement; returns its canonical text, or throws a SandboxRefusal. */
  check(sql: string, params: SqlParams = {}): Promise<string> {
    return this.opts.session.run((client) => this.checkWith(client, sql, params));
  }

  async run(sql: string, params: SqlParams = {}): Promise<SandboxResult> {
    return this.opts.session.run(async (client) => {
      const canonical = await this.checkWith(client, sql, params);
      try {
        const rs = await client.query({ query: canonical, format: 'JSON', query_params: params, clickhouse_settings: this.settings() });
        const out = await rs.json<Record<string, unknown>>();
        return {
          sql: canonical,
          columns: out.meta?.map((m) => ({ name: m.name, type: m.type })) ?? [],
          rows: out.data,
          rows_count: out.data.length,
          statistics: {
            elapsed_s: Number(out.statistics?.elapsed ?? 0),
            rows_read: Number(out.statistics?.rows_read ?? 0),
            bytes_read: Number(out.statistics?.bytes_read ?? 0),
          },
        };
      } catch (err) {
        throw classifyEngineError(err);
      }
    });
  }

  /** The result as CSV with a header row. */
  async runCsv(sql: string, params: SqlParams = {}): Promise<Readable> {
    return this.opts.session.run(async (client) => {
      const canonical = await this.checkWith(client, sql, params);
      try {
        const result = await client.exec({
          query: `${canonical}\nFORMAT CSVWithNames`,
          query_params: params,
          clickhouse_settings: { ...this.settings(), format_csv_null_representation: '' },
        });
        return result.stream;
      } catch (err) {
        throw classifyEngineError(err);
      }
    });
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
      max_rows_to_read: String(l.maxRowsToRead),
      max_bytes_to_read: String(l.maxBytesToRead),
      read_overflow_mode: 'throw',
      max_result_rows: String(l.maxResultRows),
      max_result_bytes: String(l.maxResultBytes),
      result_overflow_mode: 'throw',
      max_memory_usage: String(l.maxMemoryBytes),
    };
  }

  private async checkWith(client: ClickHouseClient, sql: string, params: SqlParams): Promise<string> {
    if (sql.trim() === '') throw new SandboxRefusal('sql_empty', 'the SQL is empty');
    if (sql.length > this.limits.maxSqlChars) {
      throw new SandboxRefusal('sql_too_long', `the SQL is ${sql.length} characters; the limit is ${this.limits.maxSqlChars}`);
    }
    const canonical = await this.format(client, sql);
    await this.checkTree(client, canonical, params, new Set(), 0);
    return canonical;
  }

  /** Step 1: one statement, canonical text; the SQL travels as a bound parameter. */
  private async format(client: ClickHouseClient, sql: string): Promise<string> {
    try {
      const [row] = await queryRows<{ q: string }>(client, 'SELECT formatQuery({sandbox_sql:String}) AS q', { sandbox_sql: sql }, this.settings());
      if (!row) throw new SandboxRefusal('sql_syntax_error', 'ClickHouse could not parse the SQL');
      return row.q;
    } catch (err) {
      if (err instanceof SandboxRefusal) throw err;
      throw new SandboxRefusal('sql_syntax_error', engineMessage(err), { engine_error: engineType(err) });
    }
  }

  /** Steps 2–3, for the statement and then for each analytics view it reads. */
  private async checkTree(client: ClickHouseClient, sql: string, params: SqlParams, seenViews: Set<string>, depth: number): Promise<void> {
    const root = await this.explainAst(client, sql, params);
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
    const [row] = await queryRows<{ as_select: string }>(
      this.opts.catalogClient,
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
    queryRows<{ name: string; engine: string }>(ch, 'SELECT name, engine FROM system.tables WHERE database = {db:String}', { db: ANALYTICS_DB }),
    queryRows<{ name: string }>(ch, 'SELECT name FROM system.databases'),
    queryRows<{ name: string }>(ch, 'SELECT lower(name) AS name FROM system.table_functions'),
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
export function classifyEngineError(err: unknown): SandboxRefusal | Error {
  if (err instanceof SandboxRefusal) return err;
  const type = engineType(err);
  if (!type) return err instanceof Error ? err : new Error(String(err));
  const limit = LIMIT_BY_ERROR_TYPE[type];
  if (limit) return new SandboxRefusal('sql_limit_exceeded', `the query exceeded the sandbox's ${limit} limit: ${engineMessage(err)}`, { limit, engine_error: type });
  if (type === 'READONLY') return new SandboxRefusal('sql_write_refused', `the sandbox is read-only: ${engineMessage(err)}`, { engine_error: type });
  if (type === 'ACCESS_DENIED') return new SandboxRefusal('sql_table_refused', `the analytics reader may not read this: ${engineMessage(err)}`, { engine_error: type });
  if (type === 'UNKNOWN_QUERY_PARAMETER') return new SandboxRefusal('sql_missing_parameter', engineMessage(err), { engine_error: type });
  return new SandboxRefusal('sql_query_failed', engineMessage(err), { engine_error: type });
}
