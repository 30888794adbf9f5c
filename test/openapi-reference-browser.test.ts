/**
 * The API reference page (/docs/api) in a real browser (Debian's chromium through
 * playwright-core): it renders every operation of the document under its own strict
 * Content-Security-Policy, with no violation, no script error and no request to any
 * other origin (Swagger UI is served from node_modules, never a CDN).
 *
 * Only the reference is served here (app/api-reference.ts on a bare Fastify): the page
 * needs nothing else, and the contract test covers the routes it describes.
 */
import { existsSync } from 'node:fs';
import Fastify, { type FastifyInstance } from 'fastify';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFERENCE_PREFIX, ROUTE_CATALOGUE } from '../app/api-contract/index.js';
import { REFERENCE_CSP, registerApiReference } from '../app/api-reference.js';

const CHROMIUM = '/usr/bin/chromium';

describe('the API reference page', () => {
  let app: FastifyInstance;
  let url: string;
  let browser: Browser;

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is required (apt-get install chromium)`).toBe(true);
    app = Fastify();
    registerApiReference(app);
    url = await app.listen({ host: '127.0.0.1', port: 0 });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'] });
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await app?.close();
  });

  it('sends its own self-only Content-Security-Policy and hardening headers', async () => {
    for (const path of [REFERENCE_PREFIX, `${REFERENCE_PREFIX}/static/swagger-ui-bundle.js`]) {
      const res = await fetch(`${url}${path}`);
      expect(res.status, path).toBe(200);
      expect(res.headers.get('content-security-policy'), path).toBe(REFERENCE_CSP);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
    // Only this origin (and one inline style pinned by its hash): no 'unsafe-*', no other host, no wildcard.
    expect(REFERENCE_CSP).not.toMatch(/unsafe|https?:|\*/);
    expect(REFERENCE_CSP).toMatch(/script-src 'self'(;|$)/);
  });

  it('renders every operation with no CSP violation, no error and nothing from another origin', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => requests.push(r.url()));
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => {
        const w = window as unknown as { __csp?: string[] };
        (w.__csp ??= []).push(`${e.violatedDirective} ${e.blockedURI}`);
      });
    });
    await page.goto(`${url}${REFERENCE_PREFIX}`);
    await page.waitForSelector('.opblock', { timeout: 30_000 });
    expect(await page.locator('.opblock').count()).toBe(ROUTE_CATALOGUE.length);
    // Opening an operation renders its parameters and response schemas too.
    await page.locator('#operations-billing-getAccountUsage .opblock-summary').click();
    await page.waitForSelector('#operations-billing-getAccountUsage .parameters', { timeout: 10_000 });
    const csp = await page.evaluate(() => (window as unknown as { __csp?: string[] }).__csp ?? []);
    expect(csp, 'CSP violations').toEqual([]);
    expect(problems, 'errors in the page').toEqual([]);
    for (const r of requests) expect(r.startsWith(url) || r.startsWith('data:'), `request off the origin: ${r}`).toBe(true);
    await context.close();
  }, 60_000);
});
