/**
 * TEST SUPPORT ONLY — not a ClickHouse server, and never part of the product.
 *
 * A small `node:http` endpoint speaking the subset of ClickHouse's HTTP interface that
 * `@clickhouse/client` uses, executing on the embedded engine (chdb) over one data
 * directory, so that tests can run the pipeline with CLICKHOUSE_URL set and exercise the
 * client's HTTP path: query text in the body and/or the `query` URL parameter (joined by a
 * newline, as the server does, so `INSERT … FORMAT` + data in the body works), `param_*`
 * bound as the server binds them (the raw text, parsed by the engine per declared type),
 * settings as URL parameters, `database`, `query_id`, `default_format`, `GET /ping`; the
 * response headers the client reads (X-ClickHouse-Summary, -Format, -Query-Id, -Timezone,
 * -Exception-Code); errors as the server writes them (the engine's own
 * `Code: N. DB::Exception: … (TYPE)` text), which the client parses into ClickHouseError.
 *
 * It enforces the server's default request limits (ClickHouse src/Core/Settings.cpp,
 * src/Server/HTTP/HTTPServerRequest.cpp, src/Server/HTTP/HTMLForm.cpp):
 *  - http_max_uri_size = 1048576: a request line whose URI is longer is refused while the
 *    request is read, before any handler: HTTPServerConnection answers 400 Bad Request with
 *    an empty body and closes the connection;
 *  - http_max_field_value_size = 128 KiB: a URL field (e.g. `param_x=…`) whose value is
 *    longer, counted as sent (percent-encoded), makes HTMLForm throw HTMLFormException
 *    "Field value too long"; HTTPHandler reports it as POCO_EXCEPTION (code 1000), status
 *    500, header X-ClickHouse-Exception-Code: 1000, body "Poco::Exception. Code: 1000, …".
 *    The client does not recognise that body as a ClickHouseError (no "(TYPE)" marker) and
 *    throws a plain Error carrying it; that is what a real server produces too.
 *  - http_max_field_name_size = 128 KiB on names, likewise.
 *
 * What it is not: one request at a time (the server runs many), every request on a fresh
 * engine connection (so settings never leak between requests, as with a sessionless
 * server), no authentication, users, quotas, sessions, compression, multipart bodies,
 * progress headers or HTTP status mapping beyond 500 / 404 / 400 for a few codes.
 */
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';

/** ClickHouse's defaults for the HTTP request limits this endpoint enforces. */
export const SERVER_DEFAULT_LIMITS = {
  http_max_uri_size: 1_048_576,
  http_max_field_value_size: 128 * 1024,
  http_max_field_name_size: 128 * 1024,
} as const;

export type HttpLimits = { -readonly [K in keyof typeof SERVER_DEFAULT_LIMITS]: number };

interface NativeResult {
  bytes: Uint8Array;
  elapsed: number;
  rowsRead: number;
  bytesRead: number;
}
interface ChdbSession {
  connection: unknown;
  close(): void;
  queryAsync(sql: string, opts?: { format?: string }): Promise<unknown>;
}
interface Native {
  QueryAsyncConnection(conn: unknown, sql: string, format: string, params?: Record<string, string>): Promise<NativeResult>;
}

const require = createRequire(import.meta.url);
const chdb = require('chdb') as { Session: new (dir: string) => ChdbSession };
// The addon's raw call, because chdb's public binder TSV-escapes string values itself; the
// server binds the raw `param_*` text, and so must this endpoint.
const native = (require(path.join(path.dirname(require.resolve('chdb')), 'dist/loader.js')) as { loadNative(): Native }).loadNative();

/** URL parameters that are not settings. */
const NOT_SETTINGS = new Set([
  'query', 'database', 'query_id', 'default_format', 'session_id', 'session_timeout', 'session_check',
  'user', 'password', 'compress', 'decompress', 'role', 'quota_key', 'stacktrace', 'close_session',
]);
/** Server-side HTTP settings the embedded engine has no use for (as chdb's own adapter drops them). */
const HTTP_ONLY = new Set([
  'wait_end_of_query', 'send_progress_in_http_headers', 'http_headers_progress_interval_ms', 'enable_http_compression',
  'http_zlib_compression_level', 'http_response_buffer_size', 'cancel_http_readonly_queries_on_client_close',
  'http_native_compression_disable_checksumming_on_decompress', 'output_format_parallel_formatting_for_http',
]);
/** A few of exceptionCodeToHTTPStatus's mappings; everything else is 500. */
const STATUS_BY_CODE: Record<number, number> = { 60: 404, 81: 404, 62: 400, 47: 400, 46: 400, 36: 400, 164: 403, 516: 401 };

export interface ClickHouseHttpEndpoint {
  /** http://127.0.0.1:<port> — for CLICKHOUSE_URL. */
  url: string;
  /** Requests refused by a limit, by reason: the test can show the limits were in force. */
  refused: { uri: number; field: number };
  requests: number;
  close(): Promise<void>;
}

class FieldTooLong extends Error {}

/** HTMLForm::readQuery: `&`-separated fields, `+` is a space, sizes counted before decoding. */
function readForm(raw: string, limits: HttpLimits): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (raw === '') return out;
  for (const field of raw.split('&')) {
    const eq = field.indexOf('=');
    const name = eq < 0 ? field : field.slice(0, eq);
    const value = eq < 0 ? '' : field.slice(eq + 1);
    if (name.length > limits.http_max_field_name_size) throw new FieldTooLong('Field name too long');
    if (value.length > limits.http_max_field_value_size) throw new FieldTooLong('Field value too long');
    out.push([decodeURIComponent(name.replace(/\+/g, ' ')), decodeURIComponent(value.replace(/\+/g, ' '))]);
  }
  return out;
}

function settingLiteral(v: string): string {
  return /^-?\d+(\.\d+)?$/.test(v) ? v : `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

export async function startClickHouseHttp(dataDir: string, limits: HttpLimits = { ...SERVER_DEFAULT_LIMITS }): Promise<ClickHouseHttpEndpoint> {
  // Keeps the data directory bound for the life of the endpoint; requests get their own.
  const anchor = new chdb.Session(dataDir);
  let chain: Promise<unknown> = Promise.resolve();
  const state = { refused: { uri: 0, field: 0 }, requests: 0 };

  async function execute(sql: string, params: Record<string, string>, settings: Array<[string, string]>, database: string | undefined, format: string): Promise<NativeResult> {
    const session = new chdb.Session(dataDir);
    try {
      const prefix = [
        ...(database && database !== 'default' ? [`USE \`${database.replace(/`/g, '')}\``] : []),
        ...settings.map(([k, v]) => `SET ${k} = ${settingLiteral(v)}`),
      ];
      const text = prefix.length ? `${prefix.join('; ')}; ${sql}` : sql;
      return Object.keys(params).length ? await native.QueryAsyncConnection(session.connection, text, format, params) : await native.QueryAsyncConnection(session.connection, text, format);
    } finally {
      session.close();
    }
  }

  const server = http.createServer({ maxHeaderSize: 4 * limits.http_max_uri_size }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const run = async () => {
        state.requests++;
        const target = req.url ?? '/';
        // HTTPServerRequest::readRequest: the URI is read up to the limit, then refused.
        if (target.length > limits.http_max_uri_size) {
          state.refused.uri++;
          res.writeHead(400, { Connection: 'close', 'Content-Length': 0 });
          res.end();
          return;
        }
        const q = target.indexOf('?');
        const pathname = q < 0 ? target : target.slice(0, q);
        if (req.method === 'GET' && pathname === '/ping') {
          res.writeHead(200, { 'Content-Type': 'text/html; charset=UTF-8' });
          res.end('Ok.\n');
          return;
        }
        const queryId = randomUUID();
        const fail = (status: number, code: number, message: string) => {
          res.writeHead(status, {
            'Content-Type': 'text/plain; charset=UTF-8',
            'X-ClickHouse-Exception-Code': String(code),
            'X-ClickHouse-Query-Id': queryId,
            'X-ClickHouse-Timezone': 'UTC',
          });
          res.end(`${message}\n`);
        };
        let form: Array<[string, string]>;
        try {
          form = readForm(q < 0 ? '' : target.slice(q + 1), limits);
        } catch (err) {
          if (!(err instanceof FieldTooLong)) throw err;
          state.refused.field++;
          fail(500, 1000, `Poco::Exception. Code: 1000, e.code() = 0, HTML Form Exception: ${err.message} (version test-support)`);
          return;
        }
        if (String(req.headers['content-type'] ?? '').startsWith('multipart/form-data')) {
          fail(500, 1, 'Code: 1. DB::Exception: multipart bodies are not implemented by the test endpoint. (UNSUPPORTED_METHOD)');
          return;
        }
        const fields = new Map(form);
        const params: Record<string, string> = {};
        const settings: Array<[string, string]> = [];
        for (const [k, v] of form) {
          if (k.startsWith('param_')) params[k.slice('param_'.length)] = v;
          else if (!NOT_SETTINGS.has(k) && !HTTP_ONLY.has(k) && /^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) settings.push([k, v]);
        }
        const body = Buffer.concat(chunks).toString('utf8');
        const urlQuery = fields.get('query');
        const sql = urlQuery !== undefined ? (body ? `${urlQuery}\n${body}` : urlQuery) : body;
        const format = fields.get('default_format') ?? 'TabSeparated';
        const id = fields.get('query_id') ?? queryId;
        try {
          const result = await execute(sql, params, settings, fields.get('database'), format);
          const summary = {
            read_rows: String(result.rowsRead ?? 0),
            read_bytes: String(result.bytesRead ?? 0),
            written_rows: '0',
            written_bytes: '0',
            total_rows_to_read: '0',
            result_rows: '0',
            result_bytes: String(result.bytes.byteLength),
            elapsed_ns: String(Math.round((result.elapsed ?? 0) * 1e9)),
          };
          res.writeHead(200, {
            'Content-Type': 'text/plain; charset=UTF-8',
            'X-ClickHouse-Query-Id': id,
            'X-ClickHouse-Format': format,
            'X-ClickHouse-Timezone': 'UTC',
            'X-ClickHouse-Summary': JSON.stringify(summary),
          });
          res.end(Buffer.from(result.bytes.buffer, result.bytes.byteOffset, result.bytes.byteLength));
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          const code = Number(/Code: (\d+)/.exec(message)?.[1] ?? 1000);
          fail(STATUS_BY_CODE[code] ?? 500, code, message);
        }
      };
      // One request at a time, on the engine's own terms.
      chain = chain.then(run).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500);
        res.end(String(err));
      });
    });
  });
  // Node's parser counts the request line in maxHeaderSize; the URI limit above is ours.
  server.maxRequestsPerSocket = 0;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get refused() {
      return state.refused;
    },
    get requests() {
      return state.requests;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await chain.catch(() => undefined);
      anchor.close();
    },
  };
}
