/**
 * Backfill import: streams an NDJSON or CSV file of wire-format samples (an agent's spool,
 * another metering system's export) through a SampleSink in batches.
 *
 * Every row goes through the same validation as a pushed sample; the summary counts rows
 * accepted, rejected by validation and unreadable (bad JSON, wrong CSV field count, line
 * too long), each with its line number. Duplicates are not knowable here: the pipeline drops
 * them later by id and natural key, so re-running an interrupted import is safe, and the
 * summary says so rather than guessing a duplicate count.
 *
 * Back-pressure from the sink pauses the import and retries the same batch; any other sink
 * failure stops it with `ImportAbortedError`, whose `resumeFromLine` says where it stopped.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { BackpressureError, type AcceptResult, type SampleSink } from '../accept.js';
import type { FieldError } from '../../schemas/sample.js';
import { HttpSinkError } from './http-sink.js';
import { csvRecordIsOpen, csvRowToItem, parseCsvHeader, type CsvLayout } from './csv.js';
import { readLines } from './lines.js';

export type ImportFormat = 'ndjson' | 'csv';

export interface LineError {
  line: number;
  /** The rejection's code when it is about the account, not the fields (`account_erased`). */
  code?: string;
  errors: FieldError[];
}

/** A sink may say how many it rejected beyond those it lists (the HTTP API lists 100). */
type SinkResult = AcceptResult & { rejectedCount?: number };

/** Distinct rejection reasons tallied at most; the rest are counted under MORE_REASONS. */
const MAX_REASONS = 50;
const MORE_REASONS = '(other reasons)';

export interface ImportProgress {
  lines: number;
  rows: number;
  accepted: number;
  rejected: number;
  parseErrors: number;
  /** Set when importing a file: bytes read so far (compressed bytes for .gz) and the total. */
  bytesRead?: number;
  totalBytes?: number;
}

export interface ImportSummary {
  format: ImportFormat;
  /** Lines read, blank ones and the CSV header included. */
  lines: number;
  /** Data rows found (sent or unreadable). */
  rows: number;
  accepted: number;
  rejected: number;
  parseErrors: number;
  /** The first `maxErrors` rejected or unreadable rows, in file order. */
  errors: LineError[];
  errorsOmitted: number;
  /** How many rows each reason refused (`path: message`, or the code), at most MAX_REASONS kinds. */
  reasons: Record<string, number>;
  batches: number;
  durationMs: number;
}

export interface ImportOptions {
  sink: SampleSink;
  format: ImportFormat;
  /** Rows per sink.accept call (default 1000; keep it ≤ MAX_BATCH_ITEMS). */
  batchSize?: number;
  /** Called after every batch; a failing callback never stops the import. */
  onProgress?: (p: ImportProgress) => void;
  maxErrors?: number;
  maxLineLength?: number;
  /** How many times one batch is retried under back-pressure before giving up (default 120). */
  maxBackpressureRetries?: number;
  signal?: AbortSignal;
  /** For tests: how to wait out back-pressure. */
  sleep?: (ms: number) => Promise<void>;
}

export class ImportAbortedError extends Error {
  override name = 'ImportAbortedError';
  constructor(
    message: string,
    readonly summary: ImportSummary,
    /** First line not known to be handled: re-import from here (or re-import all; ids make it safe). */
    readonly resumeFromLine: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Thrown before anything is sent when the file's shape is wrong (e.g. an unknown CSV column). */
export class ImportFormatError extends Error {
  override name = 'ImportFormatError';
}

interface Pending {
  items: unknown[];
  lines: number[];
}

export async function importSamples(source: AsyncIterable<Buffer | string>, opts: ImportOptions, progressExtra: () => Partial<ImportProgress> = () => ({})): Promise<ImportSummary> {
  const started = Date.now();
  const batchSize = opts.batchSize ?? 1000;
  const maxErrors = opts.maxErrors ?? 100;
  const maxLineLength = opts.maxLineLength ?? 1024 * 1024;
  const summary: ImportSummary = {
    format: opts.format, lines: 0, rows: 0, accepted: 0, rejected: 0, parseErrors: 0, errors: [], errorsOmitted: 0, reasons: {}, batches: 0, durationMs: 0,
  };
  const tally = (reason: string, n = 1) => {
    const key = reason in summary.reasons || Object.keys(summary.reasons).length < MAX_REASONS ? reason : MORE_REASONS;
    summary.reasons[key] = (summary.reasons[key] ?? 0) + n;
  };
  const addError = (line: number, errors: FieldError[], code?: string) => {
    // Reasons without the row's own values, so identical causes add up.
    tally(code ?? errors.map((e) => `${e.path}: ${e.message.replace(/^(.{0,80}).*$/s, '$1')}`).join('; '));
    if (summary.errors.length < maxErrors) summary.errors.push({ line, ...(code ? { code } : {}), errors });
    else summary.errorsOmitted++;
  };
  const parseError = (line: number, message: string) => {
    summary.rows++;
    summary.parseErrors++;
    addError(line, [{ path: '(line)', message }]);
  };
  const progress = () => {
    try {
      opts.onProgress?.({
        lines: summary.lines, rows: summary.rows, accepted: summary.accepted, rejected: summary.rejected, parseErrors: summary.parseErrors, ...progressExtra(),
      });
    } catch {
      // a progress bar must not break an import
    }
  };

  let batch: Pending = { items: [], lines: [] };
  const send = async () => {
    if (batch.items.length === 0) return;
    const current = batch;
    batch = { items: [], lines: [] };
    const result: SinkResult = await acceptWithRetry(opts, current, summary, started);
    summary.batches++;
    summary.accepted += result.accepted;
    const rejectedCount = Math.max(result.rejectedCount ?? 0, result.rejected.length);
    summary.rejected += rejectedCount;
    // Rejections arrive by index; report them in file order with their line numbers.
    for (const r of [...result.rejected].sort((a, b) => a.index - b.index)) addError(current.lines[r.index] ?? 0, r.errors, r.code);
    // Rejected but not listed (the API lists the first 100 of a batch): counted, reason unknown.
    if (rejectedCount > result.rejected.length) {
      summary.errorsOmitted += rejectedCount - result.rejected.length;
      tally('(not listed by the server: lower --batch-size to see every reason)', rejectedCount - result.rejected.length);
    }
    progress();
  };
  const add = async (line: number, item: unknown) => {
    summary.rows++;
    batch.items.push(item);
    batch.lines.push(line);
    if (batch.items.length >= batchSize) await send();
  };

  let layout: CsvLayout | undefined;
  let record: { line: number; last: number; text: string } | undefined; // a CSV record spanning lines
  // An open quote swallows every line after it: say how many, so none is lost unseen.
  const swallowed = (r: { line: number; last: number }) => `lines ${r.line}–${r.last} (${r.last - r.line + 1} lines) were read as one record and not imported`;
  for await (const l of readLines(source, maxLineLength)) {
    if (opts.signal?.aborted) {
      throw new ImportAbortedError('import cancelled', finish(summary, started), batch.lines[0] ?? l.line);
    }
    summary.lines = l.line;
    if ('tooLong' in l) {
      record = undefined;
      parseError(l.line, `line longer than ${maxLineLength} characters`);
      continue;
    }
    if (opts.format === 'ndjson') {
      if (l.text.trim() === '') continue;
      let item: unknown;
      try {
        item = JSON.parse(l.text);
      } catch {
        parseError(l.line, 'not valid JSON');
        continue;
      }
      await add(l.line, item);
      continue;
    }
    // CSV: join physical lines while a quoted field is open.
    record = record ? { line: record.line, last: l.line, text: `${record.text}\n${l.text}` } : { line: l.line, last: l.line, text: l.text };
    if (csvRecordIsOpen(record.text)) {
      if (record.text.length > maxLineLength) {
        parseError(record.line, `record longer than ${maxLineLength} characters (unterminated quote?): ${swallowed(record)}`);
        record = undefined;
      }
      continue;
    }
    const { line, text } = record;
    record = undefined;
    if (text.trim() === '') continue;
    if (!layout) {
      try {
        layout = parseCsvHeader(text);
      } catch (err) {
        throw new ImportFormatError(`line ${line}: ${(err as Error).message}`);
      }
      continue;
    }
    const row = csvRowToItem(layout, text);
    if (row.ok) await add(line, row.item);
    else parseError(line, row.message);
  }
  if (record) parseError(record.line, `unterminated quoted field at the end of the file: ${swallowed(record)}`);
  if (opts.format === 'csv' && !layout && summary.rows === 0 && summary.lines > 0) {
    throw new ImportFormatError('the CSV file has no header row');
  }
  await send();
  progress();
  return finish(summary, started);
}

async function acceptWithRetry(opts: ImportOptions, batch: Pending, summary: ImportSummary, started: number) {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const maxRetries = opts.maxBackpressureRetries ?? 120;
  for (let attempt = 0; ; attempt++) {
    try {
      return await opts.sink.accept(batch.items);
    } catch (err) {
      const resume = batch.lines[0] ?? 0;
      if (err instanceof BackpressureError && attempt < maxRetries && !opts.signal?.aborted) {
        await sleep(Math.max(1, err.retryAfterS) * 1000);
        continue;
      }
      // Only our own HTTP answer is quoted: another sink's message may carry a connection string.
      const why =
        err instanceof BackpressureError ? 'the pipeline stayed behind' : err instanceof HttpSinkError ? err.message : `the sink failed (${(err as Error)?.name ?? 'error'})`;
      throw new ImportAbortedError(`import stopped at line ${resume}: ${why}`, finish(summary, started), resume, { cause: err });
    }
  }
}

function finish(summary: ImportSummary, started: number): ImportSummary {
  // Unreadable rows are found while reading, rejected ones when their batch returns: sort
  // so the report reads in file order.
  return { ...summary, errors: [...summary.errors].sort((a, b) => a.line - b.line), durationMs: Date.now() - started };
}

/** `.csv`, `.ndjson`, `.jsonl`, `.json`, optionally followed by `.gz`. */
export function detectFormat(path: string): ImportFormat | undefined {
  const name = path.toLowerCase().replace(/\.gz$/, '');
  if (name.endsWith('.csv')) return 'csv';
  if (name.endsWith('.ndjson') || name.endsWith('.jsonl') || name.endsWith('.json')) return 'ndjson';
  return undefined;
}

/** Imports a file (gzip-compressed when it ends in .gz); progress reports bytes read of the total. */
export async function importFile(path: string, opts: Omit<ImportOptions, 'format'> & { format?: ImportFormat }): Promise<ImportSummary> {
  const format = opts.format ?? detectFormat(path);
  if (!format) throw new ImportFormatError(`cannot tell the format of ${path}: name it .csv or .ndjson, or pass the format`);
  const totalBytes = (await stat(path)).size;
  const file = createReadStream(path);
  let source: AsyncIterable<Buffer> = file;
  if (path.toLowerCase().endsWith('.gz')) {
    const gunzip = createGunzip();
    file.on('error', (err) => gunzip.destroy(err)); // pipe() does not forward read errors
    source = file.pipe(gunzip);
  }
  try {
    return await importSamples(source, { ...opts, format }, () => ({ bytesRead: file.bytesRead, totalBytes }));
  } finally {
    file.destroy();
  }
}

/** A human summary for the CLI. */
export function formatImportSummary(s: ImportSummary): string {
  const lines = [
    `rows: ${s.rows}  accepted: ${s.accepted}  rejected: ${s.rejected}  unreadable: ${s.parseErrors}  (${s.batches} batches, ${(s.durationMs / 1000).toFixed(1)} s)`,
    'duplicates: decided downstream by id and natural key; accepted duplicates are never billed twice, so re-running an import is safe',
  ];
  const reasons = Object.entries(s.reasons).sort((a, b) => b[1] - a[1]);
  if (reasons.length > 0) {
    lines.push('rejected and unreadable rows by reason:');
    for (const [reason, n] of reasons) lines.push(`  ${String(n).padStart(8)}  ${reason}`);
  }
  for (const e of s.errors) lines.push(`  line ${e.line}${e.code ? ` [${e.code}]` : ''}: ${e.errors.map((x) => `${x.path}: ${x.message}`).join('; ')}`);
  if (s.errorsOmitted > 0) lines.push(`  … and ${s.errorsOmitted} more`);
  return lines.join('\n');
}
