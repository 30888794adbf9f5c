/**
 * The web console in a real browser (Debian's chromium through playwright-core) against a
 * real pipeline (real Redis, embedded ClickHouse), seeded by this file: usage samples for
 * one account through HTTP ingest, three weeks of fleet analytics written into analytics,
 * and a quarantined entry. Each view must load, show the numbers computed here from what
 * was seeded, log no console error and no Content-Security-Policy violation, and never put
 * the key in a URL. A wrong key must get a clear message.
 *
 * The browser is required: chromium missing fails this file (CI installs it).
 * CONSOLE_SCREENSHOTS=<dir> also writes a screenshot of each view there
 * (`npm run console:screenshots` writes docs/console/*.png).
 */
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { addToQuarantine } from '../domain/quarantine.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = process.env.CONSOLE_SCREENSHOTS;
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const GiB = 1024 ** 3;
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z');
const chTime = (ms: number) => new Date(ms).toISOString().slice(0, 19).replace('T', ' ');

// --- billing seed: one account, six hours, through HTTP ingest ----------------------------

const ACCOUNT = 'acme-console';
const LIVE_END = Math.floor(Date.now() / HOUR) * HOUR - HOUR;
const LIVE_HOURS = Array.from({ length: 6 }, (_, i) => LIVE_END - (6 - i) * HOUR);

interface Seeded { metric: 'cpu' | 'memory' | 'bandwidth_out'; resource: string; hour: number; value: number }
const BILLING: Seeded[] = LIVE_HOURS.flatMap((hour, i) => [
  { metric: 'cpu', resource: 'vm-1', hour, value: 1800 + 450 * i } as Seeded, // vCPU-seconds
  { metric: 'cpu', resource: 'vm-2', hour, value: 3600 * ((i % 2) + 1) },
  { metric: 'memory', resource: 'vm-1', hour, value: 2 * GiB + i * 128 * 1024 * 1024 }, // bytes held for the hour
  { metric: 'bandwidth_out', resource: 'vm-1', hour, value: 1_500_000_000 + i * 250_000_000 }, // bytes
]);
/** The billed quantity's divisor of each metric's base total (vCPU-hours, GiB-hours, GB). */
const DIVISOR: Record<Seeded['metric'], bigint> = { cpu: 3600n, memory: BigInt(GiB) * 3600n, bandwidth_out: 1_000_000_000n };
const baseOf = (s: Seeded) => BigInt(s.value) * (s.metric === 'memory' ? 3600n : 1n);

/** An exact quotient as the API writes it: plain decimal, no trailing zeros (exact within 12 places). */
function quotient(n: bigint, d: bigint): string {
  const scaled = n * 10n ** 12n;
  expect(scaled % d, `${n}/${d} is not exact in 12 places`).toBe(0n);
  const q = (scaled / d).toString().padStart(13, '0');
  const int = q.slice(0, -12);
  const frac = q.slice(-12).replace(/0+$/, '');
  return frac ? `${int}.${frac}` : int;
}

// --- analytics seed: 16 days × 2 regions, written straight into analytics -----------------

const SYN_START = Math.floor((Date.now() - 40 * DAY) / DAY) * DAY;
const SYN_HOURS = 16 * 24;
const SYN_END = SYN_START + SYN_HOURS * HOUR;
interface Cell { hour: number; region: string; zone: string; type: string; it: string; metric: string; resources: number; total: bigint }
const CELLS: Cell[] = [];
for (let h = 0; h < SYN_HOURS; h++) {
  const hour = SYN_START + h * HOUR;
  const diurnal = 1 + 0.4 * Math.sin((2 * Math.PI * ((h % 24) - 8)) / 24);
  for (const [ri, region] of ['eu-west-1', 'us-east-1'].entries()) {
    const vms = 10 + ri * 6 + (h % 5);
    const cpu = BigInt(Math.round(vms * 2 * 3600 * 0.35 * diurnal * 1e6)); // µ vCPU-seconds
    for (const zone of [`${region}a`, `${region}b`]) {
      // Zone b holds a third of the VMs: the queries sum zones into one cohort.
      const share = zone.endsWith('a') ? vms - Math.floor(vms / 3) : Math.floor(vms / 3);
      CELLS.push({ hour, region, zone, type: 'vm', it: 'm5.large', metric: 'cpu', resources: share, total: (cpu * BigInt(share)) / BigInt(vms) });
      CELLS.push({ hour, region, zone, type: 'vm', it: 'm5.large', metric: 'memory', resources: share, total: BigInt(share * 8 * GiB * 3600) * 1_000_000n });
    }
    CELLS.push({ hour, region, zone: '*', type: 'volume', it: 'unknown', metric: 'storage', resources: 20 + ri * 4, total: BigInt((20 + ri * 4) * 100 * GiB * 3600) * 1_000_000n });
  }
}
/** The rollup's suppression report for the same hours: resources withheld per hour and metric. */
const SUPPRESSION = [...new Set(CELLS.map((c) => `${c.hour}|${c.metric}`))].map((k) => {
  const [hour, metric] = k.split('|') as [string, string];
  const published = CELLS.filter((c) => c.hour === Number(hour) && c.metric === metric).reduce((n, c) => n + c.resources, 0);
  // 0 to 4 resources in cells under k, in a cycle of each metric's own length (lines apart).
  const suppressed = (Number(hour) / HOUR) % ({ cpu: 3, memory: 2, storage: 5 }[metric] ?? 3);
  return { hour: Number(hour), metric, total: published + suppressed, suppressed };
});
const decimal6 = (m: bigint) => `${m / 1_000_000n}.${(m % 1_000_000n).toString().padStart(6, '0')}`;

// --- the pipeline and the browser ---------------------------------------------------------

let p: TestPipeline;
let browser: Browser;
const open: BrowserContext[] = [];
const SAMPLES_SENT = BILLING.length;
let batchesSent = 0;
const QUARANTINED_ROWS = 3;

beforeAll(async () => {
  // Fails here, loudly, when the browser is missing: CI installs it (no silent skip).
  expect(existsSync(CHROMIUM), `${CHROMIUM} is required for the console tests (apt-get install chromium)`).toBe(true);
  p = await startTestPipeline('console-browser', { K_ANONYMITY: '2' });
  for (let i = 0; i < BILLING.length; i += 8) {
    const items = BILLING.slice(i, i + 8).map((s) => ({
      id: `${s.resource}-${s.metric}-${s.hour}`, account_id: ACCOUNT, resource_id: s.resource, resource_type: 'vm', region: 'eu-west-1',
      metric: s.metric, value: s.value, ts: s.hour + HOUR, interval_s: 3600,
    }));
    const res = await p.post(items);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.accepted).toBe(items.length);
    batchesSent++;
  }
  await p.ch!.insert({
    table: 'analytics.fleet_usage_hourly_versions',
    format: 'JSONEachRow',
    values: CELLS.map((c) => ({
      hour: chTime(c.hour), region: c.region, zone: c.zone, resource_type: c.type, instance_type: c.it, metric: c.metric,
      accounts: Math.max(2, Math.ceil(c.resources / 2)), resources: c.resources, samples: c.resources * 60, total: decimal6(c.total),
      mean: Number(c.total) / 1e6 / c.resources, p50: Number(c.total) / 1e6 / c.resources, p95: (1.3 * Number(c.total)) / 1e6 / c.resources,
      max: (1.8 * Number(c.total)) / 1e6 / c.resources, generalized: 0, version: 1,
    })),
  });
  await p.ch!.insert({
    table: 'analytics.suppression_hourly',
    format: 'JSONEachRow',
    values: SUPPRESSION.map((r) => ({ hour: chTime(r.hour), metric: r.metric, resources_total: r.total, resources_generalized: r.suppressed, resources_suppressed: r.suppressed, k: 2, version: 1 })),
  });
  // An entry the engine "refused", for another account: the health view must count it.
  const rows = Array.from({ length: QUARANTINED_ROWS }, (_, i) => JSON.stringify({ account_id: 'someone-else', n: i })).join('\n');
  expect(await addToQuarantine(p.redis.client, p.redisKeys, {
    id: 'console-test-batch', batchSeq: 0, acceptedAtMs: Date.now(), firstSeenMs: Date.now(), reason: 'test: refused by the engine',
    rowFormat: 'JSONEachRow', rowCount: QUARANTINED_ROWS, accounts: { 'someone-else': [LIVE_END / 1000] }, rows,
  }, 1000)).toBe('added');
  await p.waitIdle();
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
});

afterAll(async () => {
  await browser?.close();
  await p?.stop();
});

interface Session {
  page: Page;
  /** Every URL the page requested. */
  urls: string[];
  /** Console errors, page errors and CSP violations. */
  problems: string[];
}

afterEach(async () => {
  for (const c of open.splice(0)) await c.close();
});

/** A fresh browser tab on /console/, watched for errors, violations and leaked keys. */
async function openConsole(): Promise<Session> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, acceptDownloads: true });
  open.push(context);
  const page = await context.newPage();
  const s: Session = { page, urls: [], problems: [] };
  page.on('request', (r) => s.urls.push(r.url()));
  page.on('console', (m) => {
    if (m.type() === 'error' || m.type() === 'warning') s.problems.push(`console ${m.type()}: ${m.text()}`);
  });
  page.on('pageerror', (e) => s.problems.push(`page error: ${e.message}`));
  // CSP violations also reach the console; this records them even if they did not.
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => {
      (window as unknown as { __csp: string[] }).__csp ??= [];
      (window as unknown as { __csp: string[] }).__csp.push(`${e.violatedDirective} ${e.blockedURI}`);
    });
  });
  await page.goto(`${p.url}/console/`);
  return s;
}

async function signIn(s: Session, key: string): Promise<void> {
  await s.page.fill('#key-input', key);
  await s.page.click('#sign-in-form button[type=submit]');
}

/** What every test ends with: nothing went wrong in the page, and no key travelled in a URL. */
async function expectClean(s: Session): Promise<void> {
  const csp = await s.page.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? []);
  expect(csp, 'CSP violations').toEqual([]);
  // 4xx answers the test provoked on purpose are logged by chromium as failed loads: only those.
  expect(s.problems.filter((m) => !/Failed to load resource: the server responded with a status of (401|403)/.test(m)), 'console errors').toEqual([]);
  for (const url of s.urls) {
    for (const key of Object.values(KEYS)) {
      expect(url.includes(key) || url.includes(encodeURIComponent(key)), `key in ${url}`).toBe(false);
    }
    expect(new URL(url).origin === p.url || url.startsWith('blob:') || url.startsWith('data:'), `request off the origin: ${url}`).toBe(true);
  }
}

async function shoot(s: Session, name: string): Promise<void> {
  if (!SHOTS) return;
  await s.page.waitForTimeout(300); // let the charts take their final width
  await s.page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

const statValue = (page: Page, label: string) => page.locator(`[data-stat="${label}"] .stat-value`).innerText();
const en = (n: number) => n.toLocaleString('en-US');

describe('the console', () => {
  it('refuses a wrong key with a clear message, and keeps nothing', async () => {
    const s = await openConsole();
    await signIn(s, 'not-a-real-key-0000000000');
    const error = s.page.locator('#sign-in-error');
    await error.waitFor({ state: 'visible' });
    expect(await error.innerText()).toMatch(/not accepted \(401\)/);
    expect(await s.page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(await s.page.locator('#nav').isVisible()).toBe(false);
    await shoot(s, 'sign-in-refused');
    await expectClean(s);
  });

  it('shows pipeline health to any key: what was ingested, queued and quarantined', async () => {
    const s = await openConsole();
    await signIn(s, KEYS.producer);
    await s.page.locator('[data-stat="Samples accepted"]').waitFor();
    // A producer key sees the health view only.
    expect(await s.page.locator('#nav a').allInnerTexts()).toEqual(['Pipeline health']);
    expect(await statValue(s.page, 'Samples accepted')).toBe(en(SAMPLES_SENT));
    expect(await statValue(s.page, 'Batches accepted')).toBe(en(batchesSent));
    expect(await statValue(s.page, 'Quarantine')).toBe(`${en(QUARANTINED_ROWS)} rows`);
    expect(await statValue(s.page, 'Dead letters')).toBe('0');
    expect(await statValue(s.page, 'Queue depth')).toBe('0');
    expect(await statValue(s.page, 'Billing data through')).toBe(`${iso(LIVE_HOURS.at(-1)!).slice(0, 16).replace('T', ' ')} UTC`);
    expect(await statValue(s.page, 'Analytics data through')).not.toBe('—');
    expect(await statValue(s.page, 'Key')).toBe('producer-test');
    expect(await s.page.evaluate(() => sessionStorage.getItem('usage-meter.api-key'))).toBe(KEYS.producer);
    if (SHOTS) await s.page.waitForTimeout(10_500); // a few refreshes, so the rate chart has a line
    await shoot(s, 'health');
    await expectClean(s);
  });

  it('shows an account\'s usage over time with period status and coverage (billing key)', async () => {
    const s = await openConsole();
    await signIn(s, KEYS.billing);
    await s.page.locator('#billing-account').waitFor();
    await s.page.fill('#billing-account', ACCOUNT);
    await s.page.fill('#billing-from', iso(LIVE_HOURS[0]!).slice(0, 10));
    await s.page.fill('#billing-through', iso(LIVE_HOURS.at(-1)!).slice(0, 10));
    await s.page.selectOption('#billing-granularity', 'hour');
    await s.page.click('#billing-load');
    await s.page.locator('#billing-coverage').waitFor();

    // Every hour × metric row, its quantity exactly as computed here.
    const table = await s.page.locator('#billing-usage tbody tr').evaluateAll((trs) =>
      trs.map((tr) => Object.fromEntries([...tr.querySelectorAll('td')].map((td) => [td.dataset.col, td.getAttribute('title') ?? td.textContent]))));
    const expected = new Map<string, bigint>();
    for (const b of BILLING) expected.set(`${iso(b.hour)}|${b.metric}`, (expected.get(`${iso(b.hour)}|${b.metric}`) ?? 0n) + baseOf(b));
    expect(table).toHaveLength(expected.size);
    for (const row of table) {
      const key = `${row.period_start!.replace('.000Z', 'Z')}|${row.metric}`;
      expect(expected.has(key), key).toBe(true);
      expect(row.quantity, key).toBe(quotient(expected.get(key)!, DIVISOR[row.metric as Seeded['metric']]));
    }
    // The range's totals per metric.
    for (const metric of ['cpu', 'memory', 'bandwidth_out'] as const) {
      const total = BILLING.filter((b) => b.metric === metric).reduce((a, b) => a + baseOf(b), 0n);
      expect(await statValue(s.page, metric)).toBe(quotient(total, DIVISOR[metric]));
    }
    expect(await s.page.locator('#billing-complete').innerText()).toBe('complete');
    // One chart per metric.
    expect(await s.page.locator('.chart canvas').count()).toBe(3);
    // Each period's status as the API states it, and each metric fully covered (every seeded
    // window is a whole hour with no gap between them).
    const api = await p.get(`/v1/accounts/${ACCOUNT}/usage?from=${iso(LIVE_HOURS[0]!)}&to=${iso(LIVE_END)}`);
    const shown = await s.page.locator('#billing-periods [data-period-status]').allInnerTexts();
    expect(shown).toEqual(api.body.periods.map((x: { status: string }) => x.status));
    const coverage = await s.page.locator('#billing-coverage td[data-col="coverage"]').allInnerTexts();
    expect(coverage.length).toBeGreaterThanOrEqual(3);
    expect(new Set(coverage)).toEqual(new Set(['100.00 %']));

    // The period's usage export downloads through the API with the key in a header.
    const period = api.body.periods.at(-1).period as string;
    const [download] = await Promise.all([s.page.waitForEvent('download'), s.page.click(`[data-export="${period}"]`)]);
    const csv = readFileSync((await download.path())!, 'utf8');
    expect(csv.split('\n')[0]).toMatch(/account_id/);
    expect(csv).toContain(ACCOUNT);
    await s.page.locator('#export-status').filter({ hasText: `usage-${period}.csv` }).waitFor();
    await shoot(s, 'billing');
    await expectClean(s);
  });

  it('charts fleet capacity from the named queries (planner key), with the numbers seeded', async () => {
    const s = await openConsole();
    await signIn(s, KEYS.planner);
    await s.page.locator('#planner-query').waitFor();
    const params = new URLSearchParams({ query: 'capacity/fleet-size', from: iso(SYN_START), to: iso(SYN_END), granularity: 'day', run: '1' });
    await s.page.goto(`${p.url}/console/#planner?${params.toString()}`);
    await s.page.locator('#planner-table tbody tr').first().waitFor();

    // Fleet size per day and resource type: the hourly count (largest over the type's
    // metrics, zones and regions summed), averaged and peaked over the day.
    const hourly = new Map<string, Map<string, number>>();
    for (const c of CELLS) {
      const k = `${c.hour}|${c.type}`;
      const byMetric = hourly.get(k) ?? new Map<string, number>();
      byMetric.set(c.metric, (byMetric.get(c.metric) ?? 0) + c.resources);
      hourly.set(k, byMetric);
    }
    const days = new Map<string, number[]>();
    for (const [k, byMetric] of hourly) {
      const [hour, type] = k.split('|');
      const dayKey = `${iso(Math.floor(Number(hour) / DAY) * DAY)}|${type}`;
      days.set(dayKey, [...(days.get(dayKey) ?? []), Math.max(...byMetric.values())]);
    }
    const rows = await s.page.locator('#planner-table tbody tr').evaluateAll((trs) =>
      trs.map((tr) => Object.fromEntries([...tr.querySelectorAll('td')].map((td) => [td.dataset.col, td.getAttribute('title') ?? td.textContent]))));
    expect(rows).toHaveLength(days.size);
    for (const row of rows) {
      const counts = days.get(`${new Date(Date.parse(row.period_start!.includes('T') ? row.period_start! : `${row.period_start!.replace(' ', 'T')}Z`)).toISOString().replace('.000Z', 'Z')}|${row.resource_type}`);
      expect(counts, JSON.stringify(row)).toBeDefined();
      expect(Number(row.peak_resources)).toBe(Math.max(...counts!));
      expect(Number(row.avg_resources)).toBeCloseTo(counts!.reduce((a, b) => a + b, 0) / counts!.length, 2);
    }
    expect(await s.page.locator('.chart canvas').count()).toBe(1);
    // What shaped the answer is shown when the API reports it (k, suppression).
    const answer = await p.get(`/v1/analytics/queries/fleet-size?from=${iso(SYN_START)}&to=${iso(SYN_END)}&granularity=day`, KEYS.planner);
    // (h1's shaped_by, issue 17: the console shows it when present and needs it nowhere.)
    expect(answer.body.shaped_by?.privacy, 'the named-query answer reports what shaped it').toBeDefined();
    {
      const total = SUPPRESSION.reduce((n, r) => n + r.total, 0);
      const suppressed = SUPPRESSION.reduce((n, r) => n + r.suppressed, 0);
      const shape = s.page.locator('[data-shape]');
      expect(await shape.locator('.shape-line').innerText()).toContain(`k=2 · ${en(suppressed)} of ${en(total)} resource-hours suppressed`);
      await shape.locator('summary').click();
      const report = await s.page.locator('#suppression-report tbody tr').evaluateAll((trs) =>
        trs.map((tr) => Object.fromEntries([...tr.querySelectorAll('td')].map((td) => [td.dataset.col, td.getAttribute('title') ?? td.textContent]))));
      expect(report.map((r) => r.metric).sort()).toEqual(['cpu', 'memory', 'storage']);
      for (const r of report) {
        const mine = SUPPRESSION.filter((x) => x.metric === r.metric);
        expect(Number(r.suppressed), r.metric).toBe(mine.reduce((n, x) => n + x.suppressed, 0));
        expect(Number(r.resource_hours), r.metric).toBe(mine.reduce((n, x) => n + x.total, 0));
      }
      await shoot(s, 'planner-suppression');
    }

    // The seasonal forecast: one row per future hour whose hour of the week has history,
    // per region; charted as one line per region.
    const forecast = new URLSearchParams({ query: 'capacity/demand-forecast', metric: 'cpu', as_of: iso(SYN_END), weeks: '2', run: '1' });
    await s.page.goto(`${p.url}/console/#planner?${forecast.toString()}`);
    await s.page.locator('#planner-count').filter({ hasText: /rows/ }).waitFor();
    await s.page.waitForFunction(() => document.querySelector('#planner-query') && (document.querySelector('#planner-query') as HTMLSelectElement).value === 'capacity/demand-forecast');
    const slots = new Map<string, Set<number>>();
    for (const c of CELLS) {
      if (c.metric !== 'cpu' || c.hour < SYN_END - 14 * DAY) continue;
      const d = new Date(c.hour);
      slots.set(c.region, (slots.get(c.region) ?? new Set()).add(d.getUTCDay() * 24 + d.getUTCHours()));
    }
    const want = [...slots.values()].reduce((n, set) => n + Array.from({ length: 168 }, (_, i) => new Date(SYN_END + i * HOUR)).filter((d) => set.has(d.getUTCDay() * 24 + d.getUTCHours())).length, 0);
    await s.page.locator('#planner-count').filter({ hasText: `${want} rows` }).waitFor();
    expect(await s.page.locator('.chart').getAttribute('data-series')).toBe(String(slots.size));
    await shoot(s, 'planner');

    // Usage per region and metric (issue 14): every metric in its natural unit, so one chart
    // per unit (vCPU; GiB for memory and storage), one line per region × metric.
    const usage = new URLSearchParams({ query: 'capacity/usage-by-region', from: iso(SYN_START), to: iso(SYN_END), granularity: 'day', run: '1' });
    await s.page.goto(`${p.url}/console/#planner?${usage.toString()}`);
    const usageDays = new Map<string, { hours: Map<number, number> }>();
    for (const c of CELLS) {
      const k = `${iso(Math.floor(c.hour / DAY) * DAY)}|${c.region}|${c.metric}`;
      const e = usageDays.get(k) ?? { hours: new Map<number, number>() };
      e.hours.set(c.hour, (e.hours.get(c.hour) ?? 0) + Number(c.total) / 1e6);
      usageDays.set(k, e);
    }
    await s.page.locator('#planner-count').filter({ hasText: `${usageDays.size} rows` }).waitFor();
    const usageRows = await s.page.locator('#planner-table tbody tr').evaluateAll((trs) =>
      trs.map((tr) => Object.fromEntries([...tr.querySelectorAll('td')].map((td) => [td.dataset.col, td.getAttribute('title') ?? td.textContent]))));
    const perHour: Record<string, number> = { cpu: 3600, memory: 3600 * GiB, storage: 3600 * GiB };
    for (const row of usageRows) {
      const e = usageDays.get(`${row.period_start}|${row.region}|${row.metric}`);
      expect(e, JSON.stringify(row)).toBeDefined();
      const levels = [...e!.hours.values()].map((v) => v / perHour[row.metric!]!);
      expect(Number(row.avg_value)).toBeCloseTo(levels.reduce((a, b) => a + b, 0) / levels.length, 3);
      expect(row.unit).toBe(row.metric === 'cpu' ? 'vCPU' : 'GiB');
    }
    expect(await s.page.locator('.chart-figure figcaption').allInnerTexts()).toEqual(['avg_value (vCPU) by region, metric', 'avg_value (GiB) by region, metric']);
    expect(await s.page.locator('.chart').evaluateAll((els) => els.map((e) => e.getAttribute('data-series')))).toEqual(['2', '4']);
    await shoot(s, 'planner-usage');
    // A column with a unit of its own is not labelled with the rows' unit.
    await s.page.selectOption('#planner-measure', 'avg_resources');
    expect(await s.page.locator('.chart-figure figcaption').allInnerTexts()).toEqual([
      'avg_resources by region, metric (the series measured in vCPU)', 'avg_resources by region, metric (the series measured in GiB)']);

    // The suppression report per day and metric, charted as the suppressed resource-hours.
    const report = new URLSearchParams({ query: 'capacity/suppression-report', from: iso(SYN_START), to: iso(SYN_END), granularity: 'day', run: '1' });
    await s.page.goto(`${p.url}/console/#planner?${report.toString()}`);
    const reportDays = new Map<string, { total: number; suppressed: number }>();
    for (const r of SUPPRESSION) {
      const k = `${iso(Math.floor(r.hour / DAY) * DAY)}|${r.metric}`;
      const e = reportDays.get(k) ?? { total: 0, suppressed: 0 };
      reportDays.set(k, { total: e.total + r.total, suppressed: e.suppressed + r.suppressed });
    }
    await s.page.locator('#planner-count').filter({ hasText: `${reportDays.size} rows` }).waitFor();
    await s.page.selectOption('#planner-measure', 'suppressed');
    const reportRows = await s.page.locator('#planner-table tbody tr').evaluateAll((trs) =>
      trs.map((tr) => Object.fromEntries([...tr.querySelectorAll('td')].map((td) => [td.dataset.col, td.getAttribute('title') ?? td.textContent]))));
    for (const row of reportRows) {
      const e = reportDays.get(`${row.period_start}|${row.metric}`);
      expect(e, JSON.stringify(row)).toBeDefined();
      expect([Number(row.resource_hours), Number(row.suppressed), Number(row.published), Number(row.k)]).toEqual([e!.total, e!.suppressed, e!.total - e!.suppressed, 2]);
    }
    expect(await s.page.locator('.chart-figure figcaption').allInnerTexts()).toEqual(['suppressed by metric']);
    expect(await s.page.locator('.chart').getAttribute('data-series')).toBe('3');
    await shoot(s, 'planner-suppression-report');
    await expectClean(s);
  });

  it('shows a dataset\'s data card and downloads it (data-science key)', async () => {
    const s = await openConsole();
    await signIn(s, KEYS.datascience);
    await s.page.locator('#dataset-name').waitFor();
    const from = SYN_START + 7 * DAY;
    const params = new URLSearchParams({ dataset: 'fleet-demand', from: iso(from), to: iso(SYN_END), validation_from: iso(SYN_END - 2 * DAY), card: '1' });
    await s.page.goto(`${p.url}/console/#datasets?${params.toString()}`);
    await s.page.locator('#dataset-card-view').waitFor();
    // One row per hour and series (zones summed), from the seeded cells.
    const rowKeys = new Set(CELLS.filter((c) => c.hour >= from).map((c) => `${c.hour}|${c.region}|${c.type}|${c.it}|${c.metric}`));
    const series = new Set(CELLS.map((c) => `${c.region}|${c.type}|${c.it}|${c.metric}`));
    const fact = (k: string) => s.page.locator(`#dataset-card-view > dl [data-fact="${k}"]`).innerText();
    expect(await fact('rows')).toBe(en(rowKeys.size));
    expect(await fact('series')).toBe(en(series.size));

    const [download] = await Promise.all([s.page.waitForEvent('download'), s.page.click('#dataset-csv')]);
    const csv = readFileSync((await download.path())!, 'utf8').trim().split('\n');
    expect(csv).toHaveLength(rowKeys.size + 1);
    expect(download.suggestedFilename()).toMatch(/^fleet-demand_.*\.csv$/);
    const [parquet] = await Promise.all([s.page.waitForEvent('download'), s.page.click('#dataset-parquet')]);
    expect(readFileSync((await parquet.path())!).subarray(0, 4).toString()).toBe('PAR1');
    await s.page.locator('#dataset-status').filter({ hasText: /Saved .*\.parquet/ }).waitFor();
    await shoot(s, 'datasets');
    await expectClean(s);
  });

  it('shows a 403 as a clear message when a view is outside the key\'s role', async () => {
    const s = await openConsole();
    await signIn(s, KEYS.planner);
    await s.page.locator('#planner-query').waitFor();
    expect(await s.page.locator('#nav a').allInnerTexts()).toEqual(['Pipeline health', 'Fleet capacity']);
    await s.page.goto(`${p.url}/console/#datasets`);
    const error = s.page.locator('.notice.error');
    await error.waitFor();
    expect(await error.innerText()).toMatch(/may not see this view \(403\).*datascience/);
    await expectClean(s);
  });

  it('signs out, forgetting the key', async () => {
    const s = await openConsole();
    await signIn(s, KEYS.billing);
    await s.page.locator('#billing-account').waitFor();
    await s.page.click('#sign-out');
    await s.page.locator('#sign-in').waitFor({ state: 'visible' });
    expect(await s.page.evaluate(() => sessionStorage.length)).toBe(0);
    await expectClean(s);
  });
});
