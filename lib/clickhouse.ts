/**
 * The one way to reach ClickHouse: `@clickhouse/client`, over the embedded engine (chdb, the
 * default) or over HTTP to a server when CLICKHOUSE_URL is set. The same SQL runs on both.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import type { z } from 'zod';
import type { Config } from '../schemas/config.js';
import { inlineIntegerParams } from './inline-integer-params.js';

export type { ClickHouseClient };
type ChdbAsClientConnection = NonNullable<Parameters<typeof createClient>[0]>['connection'];

/**
 * Settings every query runs with: 64-bit integers and decimals as JSON strings, so no
 * amount passes through a float64 on its way out; UTC for every date function.
 */
const SESSION_SETTINGS: ClickHouseSettings = {
  output_format_json_quote_64bit_integers: 1,
  output_format_json_quote_decimals: 1,
  session_timezone: 'UTC',
};

export interface ClickHouseOptions {
  /**
   * Embedded only: statements whose parameters are all integers run with them written as
   * typed literals, off chdb's process-wide lock for parameterized statements
   * (lib/inline-integer-params.ts). For the pipeline's own session, whose statements
   * carry only numbers; the API's session keeps binding every parameter.
   */
  inlineIntegerParams?: boolean;
}

export function createClickHouse(config: Pick<Config, 'CLICKHOUSE_URL' | 'CLICKHOUSE_USER' | 'CLICKHOUSE_PASSWORD' | 'DATA_DIR'>, options: ClickHouseOptions = {}): ClickHouseClient {
  if (config.CLICKHOUSE_URL) {
    return createClient({
      url: config.CLICKHOUSE_URL,
      username: config.CLICKHOUSE_USER,
      password: config.CLICKHOUSE_PASSWORD,
      clickhouse_settings: SESSION_SETTINGS,
      request_timeout: 300_000,
    });
  }
  const dir = path.join(config.DATA_DIR, 'clickhouse');
  mkdirSync(dir, { recursive: true });
  const connection = createChdbConnection({ path: dir });
  if (options.inlineIntegerParams) inlineIntegerParamsOn(connection);
  const client = createClient({
    // chdb implements the client's Connection contract against its own pinned copy of
    // @clickhouse/client-common; the shapes are the same, the declarations are two copies.
    connection: connection as unknown as ChdbAsClientConnection,
    clickhouse_settings: SESSION_SETTINGS,
  });
  const native = (connection as unknown as { chdb?: { rawInsert?: NativeInsert } }).chdb;
  if (typeof native?.rawInsert === 'function') Object.defineProperty(client, NATIVE_INSERT, { value: native.rawInsert.bind(native), configurable: true });
  return client;
}

/** Routes the connection's statements with only integer parameters to chdb's plain path. */
function inlineIntegerParamsOn(connection: object): void {
  const target = connection as Record<'query' | 'exec' | 'command', (p: { query: string; query_params?: Record<string, unknown> }) => Promise<unknown>>;
  for (const method of ['query', 'exec', 'command'] as const) {
    const original = target[method].bind(connection);
    target[method] = (params) => {
      const bound = params.query_params;
      const inlined = bound && Object.keys(bound).length > 0 ? inlineIntegerParams(params.query, bound) : undefined;
      return original(inlined === undefined ? params : { ...params, query: inlined, query_params: {} });
    };
  }
}

/** chdb's own insert of a text payload on the connection's session (chdb/index.d.ts RawInsertParams). */
type NativeInsert = (p: { table: string; columns?: readonly string[]; format: string; values: string; settings?: Record<string, string | number | boolean> }) => Promise<unknown>;

/**
 * An embedded client's engine's own insert path (see insertNdjson), kept on the client
 * under a symbol: it stays reachable through a wrapper that forwards property reads (the
 * benchmark's timing proxy), which a side table keyed by the client would not be.
 * Configurable, so that such a proxy may hand out a bound copy of it (a proxy must return a
 * non-configurable, read-only property's own value).
 */
const NATIVE_INSERT = Symbol('usage-meter.nativeInsert');

/** A human-readable name for logs: never the URL itself, which may carry credentials. */
export function describeClickHouse(config: Pick<Config, 'CLICKHOUSE_URL' | 'DATA_DIR'>): string {
  if (!config.CLICKHOUSE_URL) return `embedded (${path.join(config.DATA_DIR, 'clickhouse')})`;
  const u = new URL(config.CLICKHOUSE_URL);
  return `server ${u.protocol}//${u.host}`;
}

/**
 * Inserts pre-serialized rows: the worker's hot path. `exec` with a body skips the
 * client's per-row encoding; the response stream is drained so the connection is reused.
 * `target` is a table, optionally with its column list (for the compact formats).
 */
export async function insertNdjson(
  ch: ClickHouseClient,
  target: string,
  ndjson: string,
  settings: ClickHouseSettings = {},
  format: 'JSONEachRow' | 'JSONCompactEachRow' = 'JSONEachRow',
): Promise<void> {
  const native = (ch as unknown as { [NATIVE_INSERT]?: NativeInsert })[NATIVE_INSERT];
  const parts = native && /^([\w.]+)\s*(?:\(([\w\s,]*)\))?$/.exec(target.trim());
  if (native && parts) {
    // Embedded: chdb's own insert hands the payload to the engine's parser as bytes, where
    // the client path embeds it in the query text for the engine to re-read (about a third
    // of an insert's cost). Same engine insert, same settings, so the same deduplication
    // by insert_deduplication_token. Its errors carry no ClickHouse error type, and the
    // callers classify refusals by type (engine-errors.ts): a refused payload is sent once
    // more through the client path, which the engine refuses again with the typed error
    // (an insert of one block writes all or nothing, so nothing was written the first time).
    // That second attempt carries a token of its own: a native insert that failed after the
    // engine had noted its token must not make the retry a silent "duplicate". If the first
    // did write, the rows are there twice, which bills nothing twice (counted_samples keeps
    // the first copy of each sample).
    try {
      await native({
        table: parts[1]!,
        ...(parts[2] ? { columns: parts[2].split(',').map((c) => c.trim()) } : {}),
        format,
        values: ndjson,
        settings: { session_timezone: 'UTC', ...(settings as Record<string, string | number | boolean>) },
      });
      return;
    } catch {
      // fall through to the client path, which reports the engine's error with its type
      const token = settings.insert_deduplication_token;
      if (typeof token === 'string') settings = { ...settings, insert_deduplication_token: `${token}:after-native` };
    }
  }
  const result = await ch.exec({
    query: `INSERT INTO ${target} FORMAT ${format}`,
    values: Readable.from([ndjson]),
    clickhouse_settings: settings,
  });
  for await (const _ of result.stream) {
    // nothing comes back from an INSERT; reading to the end frees the socket
  }
}

/**
 * Runs a query with bound parameters and returns its rows (JSONEachRow), each parsed by
 * `row`: the result's contract is written beside the query, and a row that breaks it is an
 * error here, not a wrong number later. Every product call passes a schema; the unchecked
 * form (no schema) is for tests and benchmarks, which check what they read themselves.
 */
export async function queryRows<S extends z.ZodType>(ch: ClickHouseClient, row: S, query: string, params?: Record<string, unknown>, settings?: ClickHouseSettings): Promise<z.output<S>[]>;
export async function queryRows<T>(ch: ClickHouseClient, query: string, params?: Record<string, unknown>, settings?: ClickHouseSettings): Promise<T[]>;
export async function queryRows(ch: ClickHouseClient, ...args: unknown[]): Promise<unknown[]> {
  const [row, query, params = {}, settings = {}] = typeof args[0] === 'string' ? [undefined, ...args] : args;
  const rs = await ch.query({ query: query as string, query_params: params as Record<string, unknown>, format: 'JSONEachRow', clickhouse_settings: settings as ClickHouseSettings });
  const rows = await rs.json<unknown>();
  return row ? rows.map((r) => (row as z.ZodType).parse(r)) : rows;
}

/**
 * How much of one query parameter, URL-encoded, this code sends. @clickhouse/client puts
 * query parameters in the request URL (`param_<name>=…`), and a ClickHouse server refuses a
 * field longer than http_max_field_value_size (128 KiB by default) and a URI longer than
 * http_max_uri_size (1 MiB): a list that can grow with the data is sent in runs of at most
 * this size, or computed inside the engine instead. Half the field limit leaves room for
 * the other parameters and the settings in the same URL. Embedded, nothing is a URL.
 */
export const URL_PARAM_BUDGET = 64 * 1024;

/** Length of `text` once form-encoded into a URL, as the client encodes parameters. */
export function urlEncodedLength(text: string): number {
  return new URLSearchParams({ p: text }).toString().length - 2;
}

/**
 * `items` in runs whose encoded sizes (`size`, of one item with its separator) add up to at
 * most `budget`. An item larger than the budget alone is the caller's to bound first.
 */
export function paramRuns<T>(items: readonly T[], size: (item: T) => number, budget = URL_PARAM_BUDGET): T[][] {
  const runs: T[][] = [];
  let run: T[] = [];
  let used = 2; // the brackets of the array
  for (const item of items) {
    const n = size(item);
    if (run.length > 0 && used + n > budget) {
      runs.push(run);
      run = [];
      used = 2;
    }
    run.push(item);
    used += n;
  }
  if (run.length > 0) runs.push(run);
  return runs;
}

/** The encoded size of a string as an element of an Array(String) parameter: quoted, escaped, comma. */
export function stringElementSize(s: string): number {
  return urlEncodedLength(`'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}',`);
}
