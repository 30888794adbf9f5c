/**
 * `usage-meter query capacity/<name> [--param k=v]… [--format table|csv|json]`: runs a
 * named capacity-planning query. Also home of what the consumer commands (query, sql,
 * dataset, export) share: where the data comes from (a running pipeline's API with --url,
 * or ClickHouse directly), API calls with their errors, `--param k=v`, progress bars.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import type { ClickHouseClient } from '../lib/clickhouse.js';
import { openExistingEngine } from './data-dir.js';
import { capacityQueries, describeQuery, findQuery, namedQueryCsv, namedQueryShape, namedQueryWarnings, resolveQueryParams, runNamedQuery, type NamedQuery } from '../queries/capacity/library.js';
import { headerGetter, parseShapeHeaders, shapeHeaders } from '../queries/shaped-by/headers.js';
import { describeParam } from '../queries/capacity/sql-file.js';
import { ConfigError, loadConfig, type Config } from '../schemas/config.js';
import { settingsHelp, takeSettingFlags } from './settings-flags.js';
import { printTable, shapeFooter } from './table.js';

// --- shared by the consumer commands ------------------------------------------------------

export interface CliIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  stdin?: NodeJS.ReadableStream;
}

export const STD_IO: CliIo = { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin };

/** A failure worth one line to the user (exit 1), as opposed to a bug. */
export class CliError extends Error {
  override name = 'CliError';
}

export const TARGET_FLAGS = ['--url', '--key', '--key-file'];
export const TARGET_OPTIONS = {
  url: { type: 'string' },
  key: { type: 'string' },
  'key-file': { type: 'string' },
} as const;

export function targetHelp(role: string): string {
  return `Where the data comes from:
  --url URL             a running pipeline's API, e.g. http://127.0.0.1:8080, with
  --key KEY             its ${role} API key, or
  --key-file FILE       a file holding it (keeps the key out of the process list)
  Without --url, ClickHouse is read directly with the settings below: CLICKHOUSE_URL, or
  the embedded engine under DATA_DIR (one process at a time: stop the pipeline, or use --url).`;
}

export type Target = { kind: 'http'; url: string; key: string } | { kind: 'direct'; config: Config; ch: ClickHouseClient };

export function openTarget(values: { url?: string | undefined; key?: string | undefined; 'key-file'?: string | undefined }, overrides: Record<string, string>): Target {
  if (values.url) {
    const key = values.key ?? (values['key-file'] ? readFileSync(values['key-file'], 'utf8').trim() : undefined);
    if (!key) throw new ConfigError('--url needs --key or --key-file');
    let url: URL;
    try {
      url = new URL(values.url);
    } catch {
      throw new ConfigError(`--url is not a URL: ${values.url}`);
    }
    return { kind: 'http', url: url.toString().replace(/\/$/, ''), key };
  }
  if (values.key || values['key-file']) throw new ConfigError('--key and --key-file go with --url');
  const config = loadConfig(process.env, overrides);
  return { kind: 'direct', config, ch: openExistingEngine(config) };
}

export async function closeTarget(t: Target): Promise<void> {
  if (t.kind === 'direct') await t.ch.close();
}

/** A call to the API; a non-2xx answer becomes a CliError carrying the server's message. */
export async function apiFetch(t: Extract<Target, { kind: 'http' }>, pathAndQuery: string, init: RequestInit = {}): Promise<Response> {
  let res: Response;
  try {
    res = await fetch(`${t.url}${pathAndQuery}`, { ...init, headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${t.key}` } });
  } catch (err) {
    throw new CliError(`cannot reach ${t.url}: ${(err as Error).message}`);
  }
  if (res.ok) return res;
  const text = await res.text();
  let message = text.slice(0, 500);
  try {
    const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
    if (body.error) message = `${body.error.code}: ${body.error.message}`;
  } catch {
    // not JSON: keep the text
  }
  throw new CliError(`${res.status} ${message}`);
}

/** `--param k=v` (repeatable) → { k: v }. */
export function parseParamFlags(list: readonly string[] | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new ConfigError(`--param takes name=value, not ${JSON.stringify(item)}`);
    out[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return out;
}

export interface Progress {
  start(total: number, payload?: Record<string, unknown>): void;
  update(value: number, payload?: Record<string, unknown>): void;
  stop(): void;
}

/** A progress bar on stderr (shown on a terminal), or nothing with --quiet. */
export function progressBar(io: CliIo, quiet: boolean, format: string): Progress {
  if (quiet) return { start() {}, update() {}, stop() {} };
  const bar = new cliProgress.SingleBar({ format, stream: io.stderr, hideCursor: true, etaBuffer: 50 }, cliProgress.Presets.shades_classic);
  let running = false;
  return {
    start(total, payload) {
      bar.start(total, 0, payload);
      running = true;
    },
    update(value, payload) {
      if (running) bar.update(value, payload);
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}

/** Runs a command body; a CliError becomes one line on stderr and exit status 1. */
export async function reportCliErrors(command: string, io: CliIo, run: () => Promise<number>): Promise<number> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    write(io.stderr, `usage-meter ${command}: ${err.message}`);
    return 1;
  }
}

export function write(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith('\n') ? text : `${text}\n`);
}

/** Rows as an aligned table, CSV or JSON on stdout. */
export function printRows(io: CliIo, rows: Record<string, unknown>[], format: 'table' | 'json'): void {
  if (format === 'json') write(io.stdout, JSON.stringify(rows, null, 2));
  else printTable(rows, (line) => write(io.stdout, line));
}

/**
 * The footer of an analytics answer on stderr, from its X-Analytics-* and Warning headers
 * (an HTTP response's, or those the in-process path derived); nothing when it has none.
 */
export function printShapeFooter(io: CliIo, get: (name: string) => string | null, bodyWarnings?: unknown): void {
  const summary = parseShapeHeaders(get);
  if (!summary) return;
  // A JSON body's warnings were written once its rows were counted ("0 rows: …"): prefer them.
  if (Array.isArray(bodyWarnings) && bodyWarnings.every((w) => typeof w === 'string')) summary.warnings = bodyWarnings;
  for (const line of shapeFooter(summary)) write(io.stderr, line);
}

export async function pipeText(io: CliIo, body: AsyncIterable<Uint8Array | string>): Promise<void> {
  for await (const chunk of body) io.stdout.write(typeof chunk === 'string' ? chunk : Buffer.from(chunk));
}

export const OUTPUT_FORMATS = ['table', 'csv', 'json'] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export function outputFormat(value: string | undefined): OutputFormat {
  const f = value ?? 'table';
  if (!OUTPUT_FORMATS.includes(f as OutputFormat)) throw new ConfigError(`--format must be table, csv or json, not ${f}`);
  return f as OutputFormat;
}

// --- the query command --------------------------------------------------------------------

const HELP = `Usage: usage-meter query capacity/<name> [--param name=value]… [--format table|csv|json] [options]
       usage-meter query --list
       usage-meter query capacity/<name> --help      (the query's parameters)

Runs a named capacity-planning query over anonymized analytics (queries/capacity/*.sql).

Options:
  --param name=value    a parameter of the query (repeatable); times as RFC 3339,
                        YYYY-MM-DD, epoch ms, or now / now-30d / now+12h
  --format F            table (default), csv or json
  --list                list the queries
  -h, --help            this help

${targetHelp('planner')}

${settingsHelp()}`;

export async function runQueryCommand(argv: string[], io: CliIo = STD_IO): Promise<number> {
  const { overrides, rest } = takeSettingFlags(argv, ['--param', '--format', '--list', '--help', ...TARGET_FLAGS]);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { param: { type: 'string', multiple: true }, format: { type: 'string' }, list: { type: 'boolean' }, help: { type: 'boolean', short: 'h' }, ...TARGET_OPTIONS },
  });
  if (values.list) {
    write(io.stdout, 'Named queries (usage-meter query <name> --help for parameters):');
    for (const q of capacityQueries()) write(io.stdout, `  ${q.id.padEnd(36)} ${q.title}`);
    return 0;
  }
  if (positionals.length === 0) {
    write(values.help ? io.stdout : io.stderr, HELP);
    return values.help ? 0 : 2;
  }
  if (positionals.length > 1) throw new ConfigError(`one query at a time; got ${positionals.join(' ')}`);
  const name = positionals[0]!;
  const q = findQuery(name);
  if (!q) throw new ConfigError(`no named query ${name}; \`usage-meter query --list\` lists them`);
  if (values.help) {
    write(io.stdout, queryHelp(q));
    return 0;
  }
  const format = outputFormat(values.format);
  const raw = parseParamFlags(values.param);
  const target = openTarget(values, overrides);
  return reportCliErrors('query', io, async () => {
    try {
      if (target.kind === 'http') {
        const query = new URLSearchParams({ ...raw, ...(format === 'csv' ? { format: 'csv' } : {}) });
        const res = await apiFetch(target, `/v1/analytics/queries/${encodeURIComponent(q.name)}?${query.toString()}`);
        let warnings: unknown;
        if (format === 'csv') await pipeText(io, res.body as unknown as AsyncIterable<Uint8Array>);
        else {
          const body = (await res.json()) as { rows: Record<string, unknown>[]; warnings?: unknown };
          printRows(io, body.rows, format);
          warnings = body.warnings;
        }
        printShapeFooter(io, (name) => res.headers.get(name), warnings);
        return 0;
      }
      const params = resolveQueryParams(q, raw);
      if ('error' in params) throw new ConfigError(`${q.id}: ${params.error}`);
      const k = target.config.K_ANONYMITY;
      if (format === 'csv') {
        const shape = await namedQueryShape(target.ch, q, params, { k });
        await pipeText(io, await namedQueryCsv(target.ch, q, params));
        printShapeFooter(io, headerGetter(shapeHeaders(shape, namedQueryWarnings(q, shape))));
      } else {
        const result = await runNamedQuery(target.ch, q, params, { k });
        printRows(io, result.rows, format);
        printShapeFooter(io, headerGetter(shapeHeaders(result.shaped_by, result.warnings)), result.warnings);
      }
      return 0;
    } finally {
      await closeTarget(target);
    }
  });
}

function queryHelp(q: NamedQuery): string {
  const d = describeQuery(q);
  const params = q.params.map(describeParam).map((p) => {
    const dflt = 'default' in p ? ` (default ${p.default})` : p.required ? ' (required)' : ' (optional)';
    const type = 'min' in p ? `${p.type} ${p.min}..${p.max}` : p.type;
    return `  --param ${`${p.name}=<${type}>`.padEnd(40)} ${p.description}${dflt}`;
  });
  return [`${d.name}: ${d.title}`, '', wrap(d.description, 88), '', 'Parameters:', ...(params.length ? params : ['  (none)'])].join('\n');
}

function wrap(text: string, width: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/)) {
    if (line && line.length + word.length + 1 > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join('\n');
}
