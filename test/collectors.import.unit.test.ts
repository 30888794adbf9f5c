/**
 * Backfill import of NDJSON and CSV files through a SampleSink: per-line accounting,
 * back-pressure, hostile files.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { BackpressureError } from '../ingest/accept.js';
import {
  detectFormat,
  formatImportSummary,
  importFile,
  ImportAbortedError,
  ImportFormatError,
  importSamples,
  type ImportProgress,
} from '../ingest/collectors/import.js';
import { MemorySink } from './fixtures/memory-sink.js';

const fixturePath = (name: string) => new URL(`./fixtures/${name}`, import.meta.url).pathname;
const dir = mkdtempSync(path.join(tmpdir(), 'collectors-import-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function* chunks(...parts: string[]) {
  for (const p of parts) yield Buffer.from(p);
}

const row = (i: number, extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    id: `r-${i}`,
    account_id: 'acct-1',
    resource_id: 'vm-1',
    resource_type: 'vm',
    region: 'eu-west-1',
    metric: 'bandwidth_in',
    value: i,
    ts: Date.UTC(2025, 2, 1, 10, 0, i % 60),
    interval_s: 60,
    ...extra,
  });

describe('import', () => {
  it('imports NDJSON with accepted, rejected and unreadable rows by line number', async () => {
    const sink = new MemorySink();
    const progress: ImportProgress[] = [];
    const summary = await importFile(fixturePath('import-samples.ndjson'), { sink, batchSize: 2, onProgress: (p) => progress.push(p) });
    expect(summary).toMatchObject({ format: 'ndjson', lines: 7, rows: 6, accepted: 3, rejected: 2, parseErrors: 1, batches: 3 });
    expect(summary.errors).toEqual([
      { line: 4, errors: [{ path: 'value', message: 'value must not be negative' }] },
      { line: 5, errors: [{ path: '(line)', message: 'not valid JSON' }] },
      { line: 7, errors: [{ path: 'interval_s', message: 'interval_s must be at most 3600' }] },
    ]);
    expect(sink.accepted.map((s) => s.id)).toEqual(['spool-0001', 'spool-0002', 'spool-0005']);
    expect(sink.accepted[1]!.attributes).toEqual({ instance_type: 'm1.small' });
    const last = progress.at(-1)!;
    expect(last).toMatchObject({ rows: 6, accepted: 3, rejected: 2, parseErrors: 1 });
    expect(last.bytesRead).toBe(last.totalBytes);
    expect(formatImportSummary(summary)).toContain('line 5: (line): not valid JSON');
  });

  it('imports CSV with quoting, multi-line fields, attribute columns and bad rows', async () => {
    const sink = new MemorySink();
    const summary = await importFile(fixturePath('import-samples.csv'), { sink });
    expect(summary).toMatchObject({ format: 'csv', lines: 8, rows: 6, accepted: 3, rejected: 2, parseErrors: 1 });
    expect(summary.errors).toEqual([
      { line: 4, errors: [{ path: 'value', message: 'bandwidth_out value must be a whole number of bytes' }] },
      { line: 5, errors: [{ path: '(line)', message: 'expected 11 fields, found 9' }] },
      { line: 8, errors: [{ path: 'value', message: 'value must be a number' }] },
    ]);
    expect(sink.accepted.map((s) => [s.id, s.value, s.attributes])).toEqual([
      ['csv-0001', '12.5', { instance_type: 'm1.small' }],
      ['csv-0002', '1048576', { zone: 'eu-west-1a' }],
      ['csv-0005', '1024', { instance_type: 'm1.small', plan: 'pro' }],
    ]);
    expect(sink.accepted[1]!.ts_ms).toBe(1740823260000);
  });

  it('takes optional wire fields as optional columns: absent, or an empty cell for absent', async () => {
    const sink = new MemorySink(() => Date.UTC(2025, 2, 1, 12));
    const header = 'id,account_id,resource_id,resource_type,region,metric,value,ts,interval_s,estimated\n';
    const rows = [
      'e-1,acct-1,vm-1,vm,eu-west-1,cpu,1.5,1740823260000,60,\n',
      'e-2,acct-1,vm-1,vm,eu-west-1,cpu,1.5,1740823320000,60,held\n',
      'e-3,acct-1,vm-1,vm,eu-west-1,cpu,1.5,1740823380000,60,guessed\n',
    ];
    const summary = await importSamples(chunks(header, ...rows), { sink, format: 'csv' });
    expect(summary).toMatchObject({ rows: 3, accepted: 2, rejected: 1 });
    expect(sink.accepted.map((s) => [s.id, s.estimated])).toEqual([['e-1', undefined], ['e-2', 'held']]);
    expect(summary.errors.map((e) => [e.line, e.errors[0]!.path])).toEqual([[4, 'estimated']]);
    // Rejections are tallied by reason in the summary.
    expect(summary.reasons).toEqual({ [`estimated: ${summary.errors[0]!.errors[0]!.message.slice(0, 80)}`]: 1 });
    expect(formatImportSummary(summary)).toMatch(/rejected and unreadable rows by reason:\n\s+1  estimated: /);
  });

  it('stops before sending anything when the CSV header is wrong', async () => {
    const sink = new MemorySink();
    const bad = 'id,account_id,resource_id,resource_type,region,metric,value,ts,interval_s,customer_email\n';
    await expect(importSamples(chunks(bad, 'x\n'), { sink, format: 'csv' })).rejects.toThrow(
      /line 1: unknown column "customer_email"; expected id, account_id/,
    );
    await expect(importSamples(chunks('id,value\n'), { sink, format: 'csv' })).rejects.toThrow(ImportFormatError);
    expect(sink.calls).toEqual([]);
  });

  it('waits out back-pressure and resends the same batch', async () => {
    const sink = new MemorySink();
    sink.failNext.push(new BackpressureError(2), new BackpressureError(2));
    const waits: number[] = [];
    const summary = await importSamples(chunks(`${row(1)}\n${row(2)}\n${row(3)}`), {
      sink,
      format: 'ndjson',
      batchSize: 2,
      sleep: async (ms) => void waits.push(ms),
    });
    expect(waits).toEqual([2000, 2000]);
    expect(summary).toMatchObject({ accepted: 3, batches: 2 });
    expect(sink.accepted.map((s) => s.id)).toEqual(['r-1', 'r-2', 'r-3']);
  });

  it('gives up on a failing sink with where to resume', async () => {
    const sink = new MemorySink();
    const lines = Array.from({ length: 5 }, (_, i) => row(i + 1)).join('\n');
    const original = sink.accept.bind(sink);
    let call = 0;
    sink.accept = async (items) => {
      if (++call === 2) throw new Error('redis down'); // the first batch goes through
      return original(items);
    };
    const err = await importSamples(chunks(lines), { sink, format: 'ndjson', batchSize: 2 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImportAbortedError);
    expect((err as ImportAbortedError).resumeFromLine).toBe(3);
    expect((err as ImportAbortedError).summary).toMatchObject({ accepted: 2 });
    expect((err as Error).message).toBe('import stopped at line 3: the sink failed (Error)');
  });

  it('survives hostile files: a huge line, no newline, binary, BOM, CRLF, split UTF-8', async () => {
    const sink = new MemorySink();
    const huge = `{"id":"${'x'.repeat(5000)}"}`;
    const summary = await importSamples(chunks('\ufeff', `${row(1)}\r\n`, huge.slice(0, 2500), huge.slice(2500), '\n\u0000\u0001\u0002\n', row(2)), {
      sink,
      format: 'ndjson',
      maxLineLength: 1000,
    });
    expect(summary).toMatchObject({ lines: 4, rows: 4, accepted: 2, parseErrors: 2 });
    expect(summary.errors.map((e) => [e.line, e.errors[0]!.message])).toEqual([
      [2, 'line longer than 1000 characters'],
      [3, 'not valid JSON'],
    ]);

    // A multi-byte character split across chunks must not be mangled.
    const euro = Buffer.from(`${row(3, { attributes: { plan: 'pro €' } })}\n`);
    async function* split() {
      yield euro.subarray(0, euro.length - 3);
      yield euro.subarray(euro.length - 3);
    }
    await importSamples(split(), { sink, format: 'ndjson' });
    expect(sink.accepted.at(-1)!.attributes).toEqual({ plan: 'pro €' });
  });

  it('says how many lines an unterminated CSV quote swallowed', async () => {
    const header = 'id,account_id,resource_id,resource_type,region,metric,value,ts,interval_s\n';
    const good = 'c1,acct-1,vm-1,vm,eu-west-1,cpu,1,2026-11-29T10:01:00Z,60\n';
    const open = 'c2,acct-1,"vm-2,vm,eu-west-1,cpu,1,2026-11-29T10:02:00Z,60\n';
    const rest = ['c3,acct-1,vm-3,vm,eu-west-1,cpu,1,2026-11-29T10:03:00Z,60\n', 'c4,acct-1,vm-4,vm,eu-west-1,cpu,1,2026-11-29T10:04:00Z,60\n'];
    const summary = await importSamples(chunks(header, good, open, ...rest), { sink: new MemorySink(), format: 'csv' });
    expect(summary.accepted).toBe(1);
    expect(summary.errors.map((e) => [e.line, e.errors[0]!.message])).toEqual([
      [3, 'unterminated quoted field at the end of the file: lines 3–5 (3 lines) were read as one record and not imported'],
    ]);
  });

  it('reads gzip files and tells formats by extension', async () => {
    const file = path.join(dir, 'spool.ndjson.gz');
    writeFileSync(file, gzipSync(`${row(1)}\n${row(2)}\n`));
    const sink = new MemorySink();
    expect(await importFile(file, { sink })).toMatchObject({ accepted: 2, format: 'ndjson' });
    expect(detectFormat('a.CSV')).toBe('csv');
    expect(detectFormat('a.jsonl.gz')).toBe('ndjson');
    expect(detectFormat('a.txt')).toBeUndefined();
    await expect(importFile(path.join(dir, 'x.txt'), { sink })).rejects.toThrow(ImportFormatError);
  });
});
