/**
 * `usage-meter export --period YYYY-MM --out FILE`: the billing export (GET /v1/usage) of
 * every account, page by page, into one NDJSON or CSV file (or stdout with `--out -`),
 * with a progress bar over accounts. A file appears under its name only when complete
 * (FILE.partial, renamed). A period's export says the period's status, and for a closed
 * period checks the file against the SHA-256 recorded at close.
 */
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import { rename, rm } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  DEFAULT_PAGE_ACCOUNTS,
  EXPORT_FORMATS,
  accountPage,
  countAccounts,
  csvHeader,
  exportColumns,
  pageRecords,
  resolveExportRequest,
  toCsvLine,
  toNdjsonLine,
  type ExportFormat,
} from '../queries/export/usage-export.js';
import { loadPeriodStates, parsePeriod, periodStatus, toDateString } from '../domain/periods.js';
import { ConfigError } from '../schemas/config.js';
import { settingsHelp, takeSettingFlags } from './settings-flags.js';
import { CliError, STD_IO, TARGET_FLAGS, TARGET_OPTIONS, apiFetch, closeTarget, openTarget, progressBar, reportCliErrors, targetHelp, write, type CliIo, type Target } from './query.js';

const HELP = `Usage: usage-meter export (--period YYYY-MM | --from T --to T) --out FILE [options]

Writes every account's totals, per metric (and per resource or region on request), for a
billing period or a range of whole hours, as NDJSON or CSV: quantities as exact decimal
strings with their units. A period's export also lists the adjustments billed in it (late
usage of earlier, closed periods); without --group-by it is the period's canonical export.

A period's export ends with its status. "complete" means every sample acknowledged so far
is included; only "closed" means final: a closed period's NDJSON export is checked against
the SHA-256 recorded when it closed, and a difference exits 1.

Options:
  --period YYYY-MM        a billing period (UTC month)
  --from T, --to T        or a range: RFC 3339, YYYY-MM-DD or epoch ms, on whole hours
  --out FILE              where to write (required); - writes to stdout
  --format F              ndjson or csv (default: from the extension, else ndjson)
  --group-by LIST         resource_id and/or region, comma-separated
  --page-size N           accounts per request/page (default ${DEFAULT_PAGE_ACCOUNTS})
  --quiet                 no progress bar
  -h, --help              this help

${targetHelp('billing')}

${settingsHelp()}`;

interface Options {
  period?: string | undefined;
  from?: string | undefined;
  to?: string | undefined;
  group_by?: string | undefined;
  limit: string;
}

interface Summary {
  accounts: number;
  rows: number;
  /** Undefined when not known (direct mode reads no Redis). */
  complete: boolean | undefined;
  /** Period mode: its status, and for a closed one the SHA-256 recorded at close. */
  period?: { status: string; recordedSha256?: string };
}

/** The file's SHA-256 when it is a canonical period export (NDJSON, no group-by). */
class Fingerprint {
  private readonly hash: Hash | undefined;
  constructor(canonical: boolean) {
    this.hash = canonical ? createHash('sha256') : undefined;
  }
  update(text: string): void {
    this.hash?.update(text);
  }
  digest(): string | undefined {
    return this.hash?.digest('hex');
  }
}

export async function runExportCommand(argv: string[], io: CliIo = STD_IO): Promise<number> {
  const { overrides, rest } = takeSettingFlags(argv, ['--period', '--from', '--to', '--out', '--format', '--group-by', '--page-size', '--quiet', '--help', ...TARGET_FLAGS]);
  const { values } = parseArgs({
    args: rest,
    allowPositionals: false,
    options: {
      period: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      out: { type: 'string' },
      format: { type: 'string' },
      'group-by': { type: 'string' },
      'page-size': { type: 'string', default: String(DEFAULT_PAGE_ACCOUNTS) },
      quiet: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      ...TARGET_OPTIONS,
    },
  });
  if (values.help) {
    write(io.stdout, HELP);
    return 0;
  }
  if (!values.out) throw new ConfigError('--out FILE is required');
  const out = values.out;
  const format = (values.format ?? (out.toLowerCase().endsWith('.csv') ? 'csv' : 'ndjson')) as ExportFormat;
  if (!(format in EXPORT_FORMATS)) throw new ConfigError(`--format must be ndjson or csv, not ${format}`);
  const options: Options = { period: values.period, from: values.from, to: values.to, group_by: values['group-by'], limit: values['page-size'] };
  // Validated here in both modes, so a bad option is a usage error before anything runs.
  const checked = resolveExportRequest(definedOnly(options));
  if ('error' in checked) throw new ConfigError(checked.error);

  const target = openTarget(values, overrides);
  const toStdout = out === '-';
  const partial = `${out}.partial`;
  const fingerprint = new Fingerprint(checked.mode === 'period' && checked.groupBy.length === 0 && format === 'ndjson');
  return reportCliErrors('export', io, async () => {
    const file: Sink = toStdout ? io.stdout : createWriteStream(partial);
    const put = (text: string) => {
      fingerprint.update(text);
      return writeTo(file, text);
    };
    // With stdout taken by the data, the progress bar (stderr) stays; --quiet silences it.
    const bar = progressBar(io, values.quiet ?? false, 'export [{bar}] {percentage}% | {value}/{total} accounts | {rows} rows | {eta_formatted}');
    try {
      const summary = target.kind === 'http' ? await viaApi(target, options, format, put, bar) : await direct(target, options, format, put, bar);
      bar.stop();
      if (!toStdout) {
        (file as WriteStream).end();
        await once(file, 'finish');
        await rename(partial, out);
      }
      const complete = summary.complete === undefined ? '' : summary.complete ? ', complete' : ', NOT complete: acknowledged samples are still being aggregated';
      write(io.stderr, `export: ${summary.accounts} accounts, ${summary.rows} rows → ${toStdout ? 'stdout' : out}${complete}`);
      return reportPeriod(io, checked.period, summary, fingerprint.digest());
    } catch (err) {
      bar.stop();
      if (!toStdout) {
        // The stream opens its file asynchronously: an error that comes first (a 403 at
        // once) would remove nothing and leave the file it creates next. Wait until it is
        // closed, then remove it.
        const stream = file as WriteStream;
        const closed = stream.closed ? Promise.resolve() : once(stream, 'close');
        stream.destroy();
        await closed;
        await rm(partial, { force: true });
      }
      throw err;
    } finally {
      await closeTarget(target);
    }
  });
}

function definedOnly(o: Options): Record<string, string> {
  return Object.fromEntries(Object.entries(o).filter((e): e is [string, string] => e[1] !== undefined));
}

type Sink = NodeJS.WritableStream;
type Put = (text: string) => Promise<void>;

async function writeTo(file: Sink, text: string): Promise<void> {
  if (!file.write(text)) await once(file, 'drain');
}

/**
 * A period export's last word: its status, and for a closed period whether the file is the
 * export fingerprinted at close. 0 when nothing is wrong, 1 when a closed period's file
 * differs from its recorded SHA-256 (an erasure since the close changes it too: erasure
 * wins over the fingerprint, and this says so rather than pass silently).
 */
function reportPeriod(io: CliIo, period: string | undefined, summary: Summary, sha256: string | undefined): number {
  if (!period || !summary.period) return 0;
  const { status, recordedSha256 } = summary.period;
  if (status !== 'closed') {
    write(io.stderr, `period ${period}: ${status} — its totals may still change; "complete" covers what was acknowledged so far, only a closed period is final`);
    return 0;
  }
  if (!sha256) {
    write(io.stderr, `period ${period}: closed (SHA-256 ${recordedSha256 ?? 'not recorded'} of its NDJSON export without --group-by; this file is not that form, so it was not checked)`);
    return 0;
  }
  if (sha256 === recordedSha256) {
    write(io.stderr, `period ${period}: closed; the file's SHA-256 ${sha256} equals the one recorded at close`);
    return 0;
  }
  write(io.stderr, `period ${period}: closed, but the file's SHA-256 ${sha256} differs from the one recorded at close (${recordedSha256 ?? 'none'}): an erasure since the close, or a changed export`);
  return 1;
}

/** Pages from a running pipeline, following X-Next-Cursor; CSV headers after the first dropped. */
async function viaApi(target: Extract<Target, { kind: 'http' }>, options: Options, format: ExportFormat, put: Put, bar: ReturnType<typeof progressBar>): Promise<Summary> {
  const summary: Summary = { accounts: 0, rows: 0, complete: true };
  let cursor: string | undefined;
  let first = true;
  do {
    const query = new URLSearchParams({ ...definedOnly(options), ...(cursor ? { cursor } : {}) });
    const res = await apiFetch(target, `/v1/usage?${query.toString()}`, { headers: { accept: format === 'csv' ? 'text/csv' : 'application/x-ndjson' } });
    if (first) bar.start(Number(res.headers.get('x-total-accounts') ?? 0), { rows: 0 });
    const status = res.headers.get('x-period-status');
    if (first && status) summary.period = { status, ...(res.headers.get('x-export-sha256') ? { recordedSha256: res.headers.get('x-export-sha256')! } : {}) };
    if (res.headers.get('x-complete') !== 'true') summary.complete = false;
    let skipHeader = format === 'csv' && !first;
    let pending = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      let text = pending + Buffer.from(chunk).toString('utf8');
      const lastNewline = text.lastIndexOf('\n');
      pending = text.slice(lastNewline + 1);
      text = text.slice(0, lastNewline + 1);
      if (skipHeader && text) {
        text = text.slice(text.indexOf('\n') + 1);
        skipHeader = false;
      }
      summary.rows += countLines(text);
      await put(text);
      bar.update(summary.accounts, { rows: summary.rows });
    }
    if (pending) throw new CliError('the server ended a page in the middle of a line');
    if (format === 'csv' && first) summary.rows -= 1; // the header
    summary.accounts += Number(res.headers.get('x-page-accounts') ?? 0);
    bar.update(summary.accounts, { rows: summary.rows });
    cursor = res.headers.get('x-next-cursor') ?? undefined;
    first = false;
  } while (cursor);
  return summary;
}

/** Straight from ClickHouse with the same request, pages and rows as the API. */
async function direct(target: Extract<Target, { kind: 'direct' }>, options: Options, format: ExportFormat, put: Put, bar: ReturnType<typeof progressBar>): Promise<Summary> {
  const req = resolveExportRequest(definedOnly(options));
  if ('error' in req) throw new ConfigError(req.error);
  const columns = exportColumns(req);
  const summary: Summary = { accounts: 0, rows: 0, complete: undefined };
  if (req.period) {
    const start = parsePeriod(req.period)!;
    const state = (await loadPeriodStates(target.ch)).find((s) => s.period === toDateString(start));
    const status = periodStatus(start, Date.now(), state);
    summary.period = { status, ...(status === 'closed' && state ? { recordedSha256: state.export_sha256 } : {}) };
  }
  bar.start(await countAccounts(target.ch, req), { rows: 0 });
  if (format === 'csv') await put(csvHeader(columns));
  for (;;) {
    const page = await accountPage(target.ch, req);
    for await (const rec of pageRecords(target.ch, req, page.accounts)) {
      await put(format === 'csv' ? toCsvLine(rec, columns) : toNdjsonLine(rec, columns));
      summary.rows++;
    }
    summary.accounts += page.accounts.length;
    bar.update(summary.accounts, { rows: summary.rows });
    if (!page.nextCursor) return summary;
    req.after = page.accounts.at(-1)!;
  }
}

function countLines(text: string): number {
  let n = 0;
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) n++;
  return n;
}
