/**
 * The billing export (GET /v1/usage, `usage-meter export`) on a real pipeline: every
 * account's totals for a billing period, exact to the last unit against an independent
 * BigInt oracle, as NDJSON and CSV, paged with cursors without losing or repeating a row;
 * per resource and region on request; the adjustments a period bills; and, for a closed
 * period, byte for byte the canonical export whose SHA-256 was recorded at close.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { scratchDirs } from './support/temp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runExportCommand } from '../cli/export.js';
import { queryRows } from '../lib/clickhouse.js';
import { exportDigest } from '../domain/period-export.js';
import type { KeyRole } from '../schemas/config.js';
import { expectedTotals, toMicros, type SentSample } from './support/oracle.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
const monthStart = (ms: number, add = 0) => Date.UTC(new Date(ms).getUTCFullYear(), new Date(ms).getUTCMonth() + add, 1);
const label = (ms: number) => new Date(ms).toISOString().slice(0, 7);
const iso = (ms: number) => new Date(ms).toISOString();

// A finished month, long past its grace (48 h): it closes as soon as the pipeline looks.
const PERIOD = monthStart(Date.now(), -2);
const GRACE = 48 * HOUR;
// The first period not yet due to close: where late samples of PERIOD are billed.
let OPEN = PERIOD;
while (monthStart(OPEN, 1) + GRACE <= Date.now()) OPEN = monthStart(OPEN, 1);
const ACCOUNTS = Array.from({ length: 25 }, (_, i) => `acct-exp-${String(i + 1).padStart(3, '0')}`);
const HOURS = 4;

interface Sample extends SentSample {
  resource_type: string;
  region: string;
}

function samplesFor(account: string, i: number, startMs: number, hours: number, tag: string): Sample[] {
  const region = i % 3 === 0 ? 'us-east-1' : 'eu-west-1';
  const out: Sample[] = [];
  for (let h = 1; h <= hours; h++) {
    const ts = startMs + h * HOUR;
    const vm = { account_id: account, resource_id: `vm-${account}`, resource_type: 'vm', region, ts, interval_s: 3600 };
    out.push({ ...vm, id: `${tag}-${account}-cpu-${h}`, metric: 'cpu', value: Number((1.234567 * (i + 1) + h / 1000).toFixed(6)) });
    out.push({ ...vm, id: `${tag}-${account}-mem-${h}`, metric: 'memory', value: (i + 1) * 1024 ** 3 });
    out.push({ ...vm, id: `${tag}-${account}-out-${h}`, metric: 'bandwidth_out', value: 1_000_003 * (i + h) });
    // Every third account also has a volume in the other region.
    if (i % 3 === 1) out.push({ account_id: account, resource_id: `vol-${account}`, resource_type: 'volume', region: 'ap-south-1', ts, interval_s: 3600, id: `${tag}-${account}-sto-${h}`, metric: 'storage', value: 50 * 1024 ** 3 + h });
    // Every fourth account's VM has GPUs: GPU-seconds with 6 decimals.
    if (i % 4 === 2) out.push({ ...vm, id: `${tag}-${account}-gpu-${h}`, metric: 'gpu', value: Number((2 * 3600 * 0.8 + (i + h) / 1e6).toFixed(6)) });
  }
  return out;
}

const onTime = ACCOUNTS.flatMap((a, i) => samplesFor(a, i, PERIOD, HOURS, 'p'));
// On-time usage of the open period (its first two hours, which are past: OPEN started at
// least 48 hours ago, or is last month).
const current = ACCOUNTS.slice(0, 5).flatMap((a, i) => samplesFor(a, i, OPEN, 2, 'c'));
// Late samples for the closed period: adjustments billed in the first open period.
const late = [ACCOUNTS[3]!, ACCOUNTS[7]!].flatMap((a) => samplesFor(a, 0, PERIOD + 10 * HOUR, 1, 'late').filter((s) => s.metric === 'cpu'));

const tempDir = scratchDirs();

let p: TestPipeline;
let base: string;

async function get(pathAndQuery: string, opts: { accept?: string; role?: KeyRole } = {}) {
  const res = await fetch(`${base}${pathAndQuery}`, { headers: { authorization: `Bearer ${KEYS[opts.role ?? 'billing']}`, ...(opts.accept ? { accept: opts.accept } : {}) } });
  return { status: res.status, headers: res.headers, text: await res.text() };
}

const ndjson = (text: string) => text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, string>);

async function periodStatus(period: number): Promise<string | undefined> {
  const [row] = await queryRows<{ status: string }>(p.ch!, 'SELECT status FROM billing.periods FINAL WHERE period = {p:Date}', { p: iso(period).slice(0, 10) });
  return row?.status;
}

beforeAll(async () => {
  p = await startTestPipeline('consumers-export', { PERIOD_CLOSE_INTERVAL_MS: '100', RAW_RETENTION_DAYS: '400' });
  expect((await p.post(onTime)).status).toBe(202);
  await p.waitIdle();
  // Every month due closes (those after PERIOD too, though they have no data): late
  // samples are then billed in OPEN.
  for (let i = 0; (await periodStatus(PERIOD)) !== 'closed' || (OPEN > monthStart(PERIOD, 1) && (await periodStatus(monthStart(OPEN, -1))) !== 'closed'); i++) {
    if (i > 300) throw new Error('the periods did not close');
    await sleep(100);
  }
  expect((await p.post([...current, ...late])).status).toBe(202);
  await p.waitIdle();

  // The pipeline serves these routes itself: the tests go through its real wiring.
  base = p.url;
});

afterAll(async () => {
  await p?.stop();
});

// --- independent expectations -------------------------------------------------------------

const DIVISOR: Record<string, bigint> = { cpu: 3600n, memory: 3600n * 1024n ** 3n, storage: 3600n * 1024n ** 3n, bandwidth_out: 1_000_000_000n, gpu: 3600n };
const UNIT: Record<string, [string, string]> = { cpu: ['vCPU-second', 'vCPU-hour'], memory: ['byte-second', 'GiB-hour'], storage: ['byte-second', 'GiB-hour'], bandwidth_out: ['byte', 'GB'], gpu: ['GPU-second', 'GPU-hour'] };

/** base ÷ divisor to 12 places, half to even, in integers. */
function quantity(baseMicros: bigint, divisor: bigint): string {
  const num = baseMicros * 10n ** 12n;
  const den = divisor * 1_000_000n;
  let q = num / den;
  const r = num % den;
  if (r * 2n > den || (r * 2n === den && q % 2n === 1n)) q += 1n;
  const s = q.toString().padStart(13, '0');
  const text = `${s.slice(0, -12)}.${s.slice(-12)}`.replace(/0+$/, '').replace(/\.$/, '');
  return text;
}

function expectedRecord(account: string, metric: string, baseTotal: string, extra: Record<string, string> = {}) {
  const [whole = '0', frac = ''] = baseTotal.split('.');
  const micros = BigInt(whole) * 1_000_000n + BigInt(frac.padEnd(6, '0'));
  const rec: Record<string, string> = { period: label(PERIOD), account_id: account, kind: 'usage', metric, ...extra, base_total: baseTotal, base_unit: UNIT[metric]![0], quantity: quantity(micros, DIVISOR[metric]!), unit: UNIT[metric]![1] };
  if (metric === 'storage') rec.quantity_gib_month = quantity(micros, DIVISOR.storage! * 730n);
  return rec;
}

const METRIC_ORDER = ['cpu', 'memory', 'storage', 'bandwidth_in', 'bandwidth_out', 'gpu'];

function expectedPeriodRows(): Record<string, string>[] {
  const totals = expectedTotals(onTime);
  return [...totals]
    .map(([key, total]) => {
      const [account, metric] = key.split('|') as [string, string];
      return expectedRecord(account, metric, total);
    })
    .sort((a, b) => (a.account_id! < b.account_id! ? -1 : a.account_id! > b.account_id! ? 1 : METRIC_ORDER.indexOf(a.metric!) - METRIC_ORDER.indexOf(b.metric!)));
}

describe('GET /v1/usage for a billing period', () => {
  it('streams every account\'s totals per metric as NDJSON, exact against the oracle', async () => {
    const res = await get(`/v1/usage?period=${label(PERIOD)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('application/x-ndjson; charset=utf-8');
    expect(res.headers.get('x-total-accounts')).toBe('25');
    expect(res.headers.get('x-page-accounts')).toBe('25');
    expect(res.headers.get('x-next-cursor')).toBeNull();
    expect(res.headers.get('x-complete')).toBe('true');
    const rows = ndjson(res.text);
    expect(rows).toEqual(expectedPeriodRows());
    // Keys in the documented order, quantities as plain decimal strings.
    expect(Object.keys(rows.find((r) => r.metric === 'storage')!)).toEqual(['period', 'account_id', 'kind', 'metric', 'base_total', 'base_unit', 'quantity', 'unit', 'quantity_gib_month']);
    expect(rows.every((r) => /^\d+(\.\d+)?$/.test(r.quantity!) && /^\d+(\.\d+)?$/.test(r.base_total!))).toBe(true);
  });

  it('is, for a closed period, byte for byte the canonical export fingerprinted at close', async () => {
    const res = await get(`/v1/usage?period=${label(PERIOD)}`);
    const sha = createHash('sha256').update(res.text).digest('hex');
    const [recorded] = await queryRows<{ sha: string }>(p.ch!, 'SELECT export_sha256 AS sha FROM billing.periods FINAL WHERE period = {p:Date}', { p: iso(PERIOD).slice(0, 10) });
    expect(sha).toBe(recorded!.sha);
    expect(sha).toBe(await exportDigest(p.ch!, label(PERIOD)));
    expect(res.headers.get('x-period-status')).toBe('closed');
    expect(res.headers.get('x-export-sha256')).toBe(sha); // what the billing system stores
    expect((await get(`/v1/usage?period=${label(PERIOD)}`)).text).toBe(res.text); // exporting twice: the same bytes
  });

  it('bills gpu in the closed period, in GPU-hours, inside the fingerprinted export', async () => {
    const res = await get(`/v1/usage?period=${label(PERIOD)}`);
    const gpu = ndjson(res.text).filter((r) => r.metric === 'gpu');
    const withGpu = ACCOUNTS.filter((_, i) => i % 4 === 2);
    expect(gpu.map((r) => r.account_id)).toEqual(withGpu);
    for (const r of gpu) {
      const want = expectedTotals(onTime.filter((s) => s.account_id === r.account_id)).get(`${r.account_id}|gpu`)!;
      expect(r).toEqual(expectedRecord(r.account_id!, 'gpu', want));
      expect(r.quantity!.startsWith('6.4')).toBe(true); // 4 hours × 2 GPUs × 80 %
    }
    // gpu rows come last for an account, after every earlier kind.
    const first = ndjson(res.text).filter((r) => r.account_id === withGpu[0]);
    expect(first.at(-1)!.metric).toBe('gpu');
    expect(createHash('sha256').update(res.text).digest('hex')).toBe(await exportDigest(p.ch!, label(PERIOD)));
  });

  it('pages through accounts with a cursor, losing and repeating nothing', async () => {
    const whole = (await get(`/v1/usage?period=${label(PERIOD)}`)).text;
    let cursor: string | null = null;
    let pages = 0;
    let text = '';
    const seen: string[] = [];
    do {
      const res = await get(`/v1/usage?period=${label(PERIOD)}&limit=7${cursor ? `&cursor=${cursor}` : ''}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('x-total-accounts')).toBe('25');
      const accounts = [...new Set(ndjson(res.text).map((r) => r.account_id!))];
      expect(accounts.length).toBe(Number(res.headers.get('x-page-accounts')));
      seen.push(...accounts);
      cursor = res.headers.get('x-next-cursor');
      if (cursor) expect(res.headers.get('link')).toBe(`</v1/usage?period=${label(PERIOD)}&limit=7&cursor=${cursor}>; rel="next"`);
      text += res.text;
      pages++;
    } while (cursor);
    expect(pages).toBe(4);
    expect(seen).toEqual(ACCOUNTS); // each account once, whole, in order
    expect(text).toBe(whole);
  });

  it('streams CSV by Accept, with a header row and the same values', async () => {
    const res = await get(`/v1/usage?period=${label(PERIOD)}`, { accept: 'text/csv' });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
    const [header, ...lines] = res.text.trim().split('\n');
    expect(header).toBe('period,account_id,kind,metric,original_period,accepted_date,base_total,base_unit,quantity,unit,quantity_gib_month');
    const cols = header!.split(',');
    const rows = lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v]).filter(([, v]) => v !== '')));
    expect(rows).toEqual(expectedPeriodRows());
    // q-values: the client's preference wins.
    expect((await get(`/v1/usage?period=${label(PERIOD)}`, { accept: 'application/x-ndjson;q=0.5, text/csv' })).headers.get('content-type')).toMatch(/^text\/csv/);
  });

  it('splits totals per resource and region on request', async () => {
    const rows = ndjson((await get(`/v1/usage?period=${label(PERIOD)}&group_by=region,resource_id`)).text);
    const want = new Map<string, bigint>();
    for (const s of onTime) {
      const k = `${s.account_id}|${s.metric}|${s.resource_id}|${s.region}`;
      const gauge = s.metric === 'memory' || s.metric === 'storage';
      want.set(k, (want.get(k) ?? 0n) + toMicros(s.value) * (gauge ? BigInt(s.interval_s) : 1n));
    }
    expect(rows).toHaveLength(want.size);
    for (const r of rows) {
      expect(Object.keys(r).slice(0, 6)).toEqual(['period', 'account_id', 'kind', 'metric', 'resource_id', 'region']);
      const micros = want.get(`${r.account_id}|${r.metric}|${r.resource_id}|${r.region}`)!;
      const [w, f = ''] = r.base_total!.split('.');
      expect(BigInt(w!) * 1_000_000n + BigInt(f.padEnd(6, '0'))).toBe(micros);
    }
    expect(rows.filter((r) => r.region === 'ap-south-1').every((r) => r.metric === 'storage' && r.resource_id!.startsWith('vol-'))).toBe(true);
  });

  it('lists the adjustments an open period bills: late usage of the closed one, dated', async () => {
    const rows = ndjson((await get(`/v1/usage?period=${label(OPEN)}`)).text);
    const adjustments = rows.filter((r) => r.kind === 'adjustment');
    expect(adjustments).toEqual(
      [ACCOUNTS[3]!, ACCOUNTS[7]!].map((account) => ({
        ...expectedRecord(account, 'cpu', expectedTotals(late.filter((s) => s.account_id === account)).get(`${account}|cpu`)!),
        period: label(OPEN),
        kind: 'adjustment',
        original_period: label(PERIOD),
        accepted_date: new Date().toISOString().slice(0, 10),
      })),
    );
    const usage = rows.filter((r) => r.kind === 'usage');
    const totals = expectedTotals(current);
    expect(usage.map((r) => [r.account_id, r.metric, r.base_total])).toEqual(
      [...totals].map(([k, v]) => [...k.split('|'), v]).sort((a, b) => (a[0]! < b[0]! ? -1 : a[0]! > b[0]! ? 1 : METRIC_ORDER.indexOf(a[1]!) - METRIC_ORDER.indexOf(b[1]!))),
    );
    // The period's usage rows come first for an account, its adjustments after.
    const a4 = rows.filter((r) => r.account_id === ACCOUNTS[3]);
    expect(a4.map((r) => r.kind)).toEqual([...a4.filter((r) => r.kind === 'usage').map(() => 'usage'), 'adjustment']);
  });

  it('exports any whole-hour range too', async () => {
    const from = PERIOD + 2 * HOUR;
    const to = PERIOD + 4 * HOUR;
    const res = await get(`/v1/usage?from=${iso(from)}&to=${iso(to)}&format=csv`);
    expect(res.status).toBe(200);
    const [header, ...lines] = res.text.trim().split('\n');
    expect(header).toBe('from,to,account_id,kind,metric,base_total,base_unit,quantity,unit,quantity_gib_month');
    // Hours whose window ends in (from, to]: h = 2, 3.
    const inRange = onTime.filter((s) => (s.ts as number) > from && (s.ts as number) <= to);
    const totals = expectedTotals(inRange);
    expect(lines).toHaveLength(totals.size);
    for (const line of lines) {
      const [f, t, account, kind, metric, total] = line.split(',');
      expect([f, t, kind]).toEqual([iso(from), iso(to), 'usage']);
      expect(total).toBe(totals.get(`${account}|${metric}`));
    }
  });

  it('refuses bad requests with a precise error', async () => {
    const cases: [string, number, string, RegExp][] = [
      ['/v1/usage', 400, 'invalid_query', /give period=YYYY-MM, or both from and to/],
      ['/v1/usage?period=2026-13', 400, 'invalid_query', /period must be a month, YYYY-MM/],
      [`/v1/usage?period=${label(PERIOD)}&from=${iso(PERIOD)}`, 400, 'invalid_query', /not both/],
      [`/v1/usage?from=${iso(PERIOD + 1000)}&to=${iso(PERIOD + HOUR)}`, 400, 'invalid_query', /from must fall on a whole hour/],
      [`/v1/usage?period=${label(PERIOD)}&group_by=account_id`, 400, 'invalid_query', /group_by accepts resource_id, region/],
      [`/v1/usage?period=${label(PERIOD)}&limit=0`, 400, 'invalid_query', /limit must be at least 1/],
      [`/v1/usage?period=${label(PERIOD)}&limit=100000`, 400, 'invalid_query', /limit is at most 10000/],
      [`/v1/usage?period=${label(PERIOD)}&cursor=not-a-cursor`, 400, 'invalid_cursor', /cursor is not one this export issued/],
      [`/v1/usage?period=${label(PERIOD)}&tenant=x`, 400, 'invalid_query', /unknown parameter tenant/],
    ];
    for (const [url, status, code, message] of cases) {
      const res = await get(url);
      expect(res.status, url).toBe(status);
      const body = JSON.parse(res.text);
      expect(body.error.code, url).toBe(code);
      expect(body.error.message, url).toMatch(message);
    }
    // A cursor is bound to its export: another period or grouping cannot use it.
    const cursor = (await get(`/v1/usage?period=${label(PERIOD)}&limit=5`)).headers.get('x-next-cursor')!;
    expect((await get(`/v1/usage?period=${label(PERIOD)}&limit=5&group_by=region&cursor=${cursor}`)).status).toBe(400);
    expect((await get(`/v1/usage?period=${label(OPEN)}&limit=5&cursor=${cursor}`)).status).toBe(400);
    expect((await get(`/v1/usage?period=${label(PERIOD)}`, { accept: 'application/xml' })).status).toBe(406);
    expect((await get(`/v1/usage?period=${label(PERIOD)}`, { role: 'planner' })).status).toBe(403);
    expect((await fetch(`${base}/v1/usage?period=${label(PERIOD)}`)).status).toBe(401);
  });
});

describe('the export CLI', () => {
  it('follows the cursor through the API into one file', async () => {
    const dir = tempDir('um-export-');
    const out = path.join(dir, 'usage.ndjson');
    const io = capture();
    const code = await runExportCommand(['--period', label(PERIOD), '--out', out, '--page-size', '4', '--url', base, '--key', KEYS.billing, '--quiet'], io.io);
    expect(code, io.err()).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe((await get(`/v1/usage?period=${label(PERIOD)}`)).text);
    expect(io.err()).toMatch(/export: 25 accounts, \d+ rows → .*usage\.ndjson, complete/);
  });

  it('writes CSV straight from ClickHouse, identical to the API\'s', async () => {
    const dir = tempDir('um-export-');
    const out = path.join(dir, 'usage.csv');
    const io = capture();
    expect(await runExportCommand(['--period', label(PERIOD), '--group-by', 'resource_id', '--out', out, '--page-size', '6', '--data-dir', p.dataDir, '--quiet'], io.io), io.err()).toBe(0);
    expect(readFileSync(out, 'utf8')).toBe((await get(`/v1/usage?period=${label(PERIOD)}&group_by=resource_id`, { accept: 'text/csv' })).text);
    // CSV pages from the API are joined with one header too.
    const viaApi = path.join(dir, 'api.csv');
    expect(await runExportCommand(['--period', label(PERIOD), '--group-by', 'resource_id', '--out', viaApi, '--page-size', '6', '--url', base, '--key', KEYS.billing, '--quiet'], capture().io)).toBe(0);
    expect(readFileSync(viaApi, 'utf8')).toBe(readFileSync(out, 'utf8'));
  });

  it('checks a closed period against its recorded SHA-256, and says an open period is not final', async () => {
    const dir = tempDir('um-export-');
    const closed = capture();
    expect(await runExportCommand(['--period', label(PERIOD), '--out', path.join(dir, 'closed.ndjson'), '--url', base, '--key', KEYS.billing, '--quiet'], closed.io), closed.err()).toBe(0);
    expect(closed.err()).toContain(`period ${label(PERIOD)}: closed; the file's SHA-256 ${await exportDigest(p.ch!, label(PERIOD))} equals the one recorded at close`);
    const open = capture();
    expect(await runExportCommand(['--period', label(OPEN), '--out', path.join(dir, 'open.ndjson'), '--url', base, '--key', KEYS.billing, '--quiet'], open.io), open.err()).toBe(0);
    expect(open.err()).toMatch(new RegExp(`period ${label(OPEN)}: (open|closing) — its totals may still change`));
  });

  it('writes to stdout with --out -, and nothing else goes there', async () => {
    const io = capture();
    expect(await runExportCommand(['--period', label(PERIOD), '--out', '-', '--url', base, '--key', KEYS.billing, '--quiet'], io.io), io.err()).toBe(0);
    expect(io.text()).toBe((await get(`/v1/usage?period=${label(PERIOD)}`)).text);
    expect(io.err()).toMatch(/→ stdout, complete/);
  });

  it('reports an API refusal and leaves no partial file', async () => {
    const dir = tempDir('um-export-');
    const out = path.join(dir, 'usage.ndjson');
    const io = capture();
    expect(await runExportCommand(['--period', label(PERIOD), '--out', out, '--url', base, '--key', KEYS.planner, '--quiet'], io.io)).toBe(1);
    expect(io.err()).toMatch(/usage-meter export: 403 forbidden/);
    expect(() => readFileSync(out)).toThrow();
    expect(() => readFileSync(`${out}.partial`)).toThrow();
  });
});

function capture() {
  const chunks: string[] = [];
  const errs: string[] = [];
  const sink = (into: string[]) => ({ write: (s: string | Uint8Array) => (into.push(typeof s === 'string' ? s : Buffer.from(s).toString()), true) }) as unknown as NodeJS.WritableStream;
  return { io: { stdout: sink(chunks), stderr: sink(errs) }, text: () => chunks.join(''), err: () => errs.join('') };
}
