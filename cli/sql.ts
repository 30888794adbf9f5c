/**
 * `usage-meter sql "SELECT …"`: ad-hoc read-only SQL over the analytics database, with
 * the same checks and limits as POST /v1/analytics/sql (queries/sandbox/).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { SandboxRefusal, SqlSandbox, openSandboxSession } from '../queries/sandbox/sandbox.js';
import { ConfigError, analyticsCredentials } from '../schemas/config.js';
import { settingsHelp, takeSettingFlags } from './settings-flags.js';
import { headerGetter } from '../queries/shaped-by/headers.js';
import { CliError, STD_IO, TARGET_FLAGS, TARGET_OPTIONS, apiFetch, closeTarget, openTarget, outputFormat, parseParamFlags, pipeText, printRows, printShapeFooter, reportCliErrors, targetHelp, write, type CliIo } from './query.js';

const HELP = `Usage: usage-meter sql "SELECT …" [--param name=value]… [--format table|csv|json] [options]
       usage-meter sql --file query.sql | usage-meter sql - < query.sql

Runs one SELECT over the analytics database. It is parsed by ClickHouse and refused, with
the reason, if it writes, changes the schema, or reads anything outside analytics (billing,
system tables, table functions such as remote/file/url, dictionaries); it runs read-only
under limits on time, rows read, result size and memory. Bind values with {name:Type}
placeholders and --param name=value. On a ClickHouse server (CLICKHOUSE_URL) it runs as
the read-only CLICKHOUSE_ANALYTICS_USER and stops without CLICKHOUSE_ANALYTICS_PASSWORD
(or CLICKHOUSE_ANALYTICS_PASSWORD_FILE): never as CLICKHOUSE_USER.

Options:
  --file FILE           read the SQL from FILE ("-" as the SQL: read it from stdin)
  --param name=value    a value for a {name:Type} placeholder (repeatable)
  --format F            table (default), csv or json
  -h, --help            this help

${targetHelp('planner')}

${settingsHelp()}`;

export async function runSqlCommand(argv: string[], io: CliIo = STD_IO): Promise<number> {
  const { overrides, rest } = takeSettingFlags(argv, ['--file', '--param', '--format', '--help', ...TARGET_FLAGS]);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { file: { type: 'string' }, param: { type: 'string', multiple: true }, format: { type: 'string' }, help: { type: 'boolean', short: 'h' }, ...TARGET_OPTIONS },
  });
  if (values.help) {
    write(io.stdout, HELP);
    return 0;
  }
  const sql = await readSql(values.file, positionals, io);
  const format = outputFormat(values.format);
  const params = parseParamFlags(values.param);
  const target = openTarget(values, overrides);
  return reportCliErrors('sql', io, async () => {
    try {
      if (target.kind === 'http') {
        const res = await apiFetch(target, '/v1/analytics/sql', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ sql, params, format: format === 'csv' ? 'csv' : 'json' }),
        });
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
      // Its own read-only session, on a server as the read-only analytics user (ConfigError
      // without its credentials: never the pipeline's user); the catalogue is read with the ordinary one.
      const sandbox = new SqlSandbox({
        session: await openSandboxSession(target.config, analyticsCredentials(target.config)),
        catalogClient: target.ch,
        k: target.config.K_ANONYMITY,
      });
      try {
        // The same headers and body the API sends, so both paths print the same footer.
        const out = await sandbox.stream(sql, params, format === 'csv' ? 'csv' : 'json');
        let warnings: unknown;
        if (format === 'csv') await pipeText(io, out.body);
        else {
          const body = JSON.parse(await text(out.body)) as { rows: Record<string, unknown>[]; warnings?: unknown };
          printRows(io, body.rows, format);
          warnings = body.warnings;
        }
        printShapeFooter(io, headerGetter(out.headers), warnings);
        return 0;
      } catch (err) {
        if (err instanceof SandboxRefusal) throw new CliError(`${err.code}: ${err.message}`);
        throw err;
      } finally {
        await sandbox.close();
      }
    } finally {
      await closeTarget(target);
    }
  });
}

async function text(body: AsyncIterable<Uint8Array | string>): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of body) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks).toString('utf8');
}

async function readSql(file: string | undefined, positionals: string[], io: CliIo): Promise<string> {
  if (file !== undefined && positionals.length > 0) throw new ConfigError('give the SQL as an argument or with --file, not both');
  if (file !== undefined) return readFileSync(file, 'utf8');
  if (positionals.length !== 1) throw new ConfigError('give one SQL statement (quote it), --file FILE, or - to read stdin; see --help');
  if (positionals[0] !== '-') return positionals[0]!;
  if (!io.stdin) throw new ConfigError('no stdin to read the SQL from');
  let text = '';
  for await (const chunk of io.stdin) text += chunk.toString();
  return text;
}
