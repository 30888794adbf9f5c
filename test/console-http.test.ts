/**
 * The console's server side without a browser: what /console/ serves and under which
 * headers (CSP, hardening, caching, compression), that no URL reaches a file outside the
 * loaded set, that the console's own files load nothing from elsewhere and run no inline
 * code; and GET /v1/status, the health JSON it reads (any valid key, numbers from the
 * same sources as /metrics), on a real pipeline.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONSOLE_CSP, loadConsoleAssets } from '../app/console-routes.js';
import { RateWindow } from '../app/status.js';
import { KEYS, startTestPipeline, type TestPipeline } from './support/pipeline.js';

const HOUR = 3_600_000;
let p: TestPipeline;

beforeAll(async () => {
  p = await startTestPipeline('console-http');
});
afterAll(async () => {
  await p?.stop();
});

/** A raw GET: the path is sent exactly as written (fetch would normalize `..`). */
function rawGet(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const url = new URL(p.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe('the console files', () => {
  it('serves the page under a CSP that forbids inline code, other origins, framing and form posts', async () => {
    const res = await rawGet('/console/');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    const csp = String(res.headers['content-security-policy']);
    expect(csp).toBe(CONSOLE_CSP);
    const directives = Object.fromEntries(csp.split(';').map((d) => d.trim().split(/\s+/)).map(([k, ...v]) => [k, v]));
    expect(directives['default-src']).toEqual(["'self'"]);
    expect(directives['script-src']).toEqual(["'self'"]); // no 'unsafe-inline', no 'unsafe-eval', no host
    expect(directives['style-src']).toEqual(["'self'"]);
    expect(directives['connect-src']).toEqual(["'self'"]);
    expect(directives['frame-ancestors']).toEqual(["'none'"]);
    expect(directives['base-uri']).toEqual(["'none'"]);
    expect(directives['form-action']).toEqual(["'none'"]);
    expect(res.headers['x-content-type-options']).toBe('nosniff');
    expect(res.headers['x-frame-options']).toBe('DENY');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['cross-origin-opener-policy']).toBe('same-origin');
    expect(res.headers['cache-control']).toBe('no-cache');
    expect((await rawGet('/console')).headers.location).toBe('/console/');
  });

  it('revalidates by ETag, compresses, and serves uPlot from the dependency byte for byte', async () => {
    const first = await rawGet('/console/vendor/uPlot.esm.js', { 'accept-encoding': 'gzip' });
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(first.headers['content-encoding']).toBe('gzip');
    expect(first.headers['vary']).toBe('accept-encoding');
    const original = readFileSync(new URL('../node_modules/uplot/dist/uPlot.esm.js', import.meta.url));
    expect(gunzipSync(first.body).equals(original)).toBe(true);
    expect(first.body.length).toBeLessThan(original.length / 2);
    const plain = await rawGet('/console/vendor/uPlot.esm.js');
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.equals(original)).toBe(true);
    const again = await rawGet('/console/vendor/uPlot.esm.js', { 'if-none-match': String(first.headers.etag) });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    const css = await rawGet('/console/vendor/uPlot.min.css');
    expect(css.headers['content-type']).toBe('text/css; charset=utf-8');
  });

  it('answers 404 for anything outside the loaded files, however the path is spelled', async () => {
    for (const path of ['/console/../package.json', '/console/%2e%2e/package.json', '/console/js/../../app/status.ts', '/console/..%2f..%2fpackage.json', '/console/nope.js', '/console/js/', '/console/%00', '/console/jsconfig.json']) {
      const res = await rawGet(path);
      expect(res.status, path).toBeGreaterThanOrEqual(400);
      expect(res.status, path).toBeLessThan(500);
      expect(res.body.toString(), path).not.toContain('"dependencies"');
    }
  });

  it('holds no inline script or style and loads nothing from another origin', () => {
    const assets = loadConsoleAssets();
    const html = assets.get('index.html')!.body.toString();
    expect(html).not.toMatch(/<style/i);
    expect(html).not.toMatch(/\sstyle=/i);
    expect(html).not.toMatch(/\son[a-z]+=/i); // no inline event handlers
    for (const tag of html.match(/<script[^>]*>/gi) ?? []) expect(tag).toMatch(/\ssrc="[^":]+"/);
    expect(html).not.toMatch(/(src|href)="(https?:)?\/\//i);
    let total = 0;
    for (const [name, asset] of assets) {
      total += asset.body.length;
      if (name.startsWith('vendor/')) continue;
      const text = asset.body.toString();
      if (name.endsWith('.js')) {
        // Imports are relative: nothing from a CDN or a bare module name.
        for (const m of text.matchAll(/^\s*import\s[^'"]*['"]([^'"]+)['"]/gm)) expect(m[1], `${name} imports ${m[1]}`).toMatch(/^\.\.?\//);
        expect(text, name).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
        expect(text, name).not.toMatch(/localStorage|document\.cookie/);
      }
      expect(text, name).not.toMatch(/https?:\/\/(?!www\.w3\.org)/);
      expect(text, name).not.toMatch(/@import|url\(\s*['"]?(https?:)?\/\//);
    }
    expect(total).toBeLessThan(400 * 1024);
  });

  it('type-checks: the browser modules hold to their JSDoc types (console/jsconfig.json)', () => {
    const tsc = new URL('../node_modules/typescript/bin/tsc', import.meta.url).pathname;
    const run = spawnSync(process.execPath, [tsc, '-p', new URL('../console/jsconfig.json', import.meta.url).pathname], { encoding: 'utf8' });
    expect(`${run.stdout}${run.stderr}`).toBe('');
    expect(run.status).toBe(0);
  });
});

describe('GET /v1/status', () => {
  it('needs a valid key, and answers any role with its own role', async () => {
    expect((await p.get('/v1/status', '')).status).toBe(401);
    expect((await p.get('/v1/status', 'wrong-key-but-long-enough')).status).toBe(401);
    for (const [role, key] of Object.entries(KEYS)) {
      const res = await p.get('/v1/status', key);
      expect(res.status, role).toBe(200);
      expect(res.body.key).toEqual({ id: `${role}-test`, role });
      expect(JSON.stringify(res.body)).not.toContain(key);
    }
  });

  it('reports what was ingested, the backlog and the freshness of the aggregates', async () => {
    const before = (await p.get('/v1/status', KEYS.producer)).body;
    const end = Math.floor(Date.now() / HOUR) * HOUR - 2 * HOUR;
    const batches = [3, 5, 2];
    let n = 0;
    for (const size of batches) {
      const items = Array.from({ length: size }, (_, i) => ({
        id: `s-${n + i}`, account_id: 'status-account', resource_id: `r-${n + i}`, resource_type: 'vm', region: 'eu-west-1',
        metric: 'cpu', value: 60, ts: end - (n + i) * HOUR, interval_s: 3600,
      }));
      n += size;
      expect((await p.post(items)).status).toBe(202);
    }
    // One invalid sample beside a valid one: counted as rejected.
    const mixed = await p.post([{ id: 'bad', account_id: 'status-account', metric: 'cpu' }, { id: 's-x', account_id: 'status-account', resource_id: 'r-x', resource_type: 'vm', region: 'eu-west-1', metric: 'cpu', value: 1, ts: end, interval_s: 60 }]);
    expect(mixed.status).toBe(202);
    await p.waitIdle();
    await new Promise((r) => setTimeout(r, 1100)); // past the status's one-second sharing
    const s = (await p.get('/v1/status', KEYS.billing)).body;
    expect(s.ingest.samples_accepted - before.ingest.samples_accepted).toBe(n + 1);
    expect(s.ingest.samples_rejected - before.ingest.samples_rejected).toBe(1);
    expect(s.ingest.batches_accepted_fleet - before.ingest.batches_accepted_fleet).toBe(batches.length + 1);
    expect(s.ingest.samples_per_s).toBeGreaterThan(0);
    expect(s.queue).toEqual({ waiting: 0, active: 0, delayed: 0 });
    expect(s.dead_letters).toBe(0);
    expect(s.quarantine).toEqual({ entries: 0, rows: 0 });
    expect(s.freshness).toMatchObject({ inflight_batches: 0, fold_lag_batches: 0, dirty_hours: 0, billing_hour: new Date(end - HOUR).toISOString().replace('.000Z', 'Z') });
    expect(s.collector).toMatchObject({ configured: false, up: 0, down: 0, targets: [] });
    // The same counters /metrics shows.
    const metrics = await (await fetch(`${p.url}/metrics`)).text();
    expect(metrics).toContain(`um_samples_accepted_total ${s.ingest.samples_accepted}`);
    expect(s.ingest.batches_accepted_fleet).toBe(Number(await p.redis.client.get(p.redisKeys.batchSeq)));
  });
});

describe('the ingest rate window', () => {
  it('averages over about a minute, from the start when younger, and stays bounded', () => {
    const w = new RateWindow({ at: 0, accepted: 0, rejected: 0, batches: 0 });
    expect(w.observe({ at: 10_000, accepted: 100, rejected: 0, batches: 5 })).toEqual({ window_s: 10, samples_per_s: 10, rejected_per_s: 0, batches_per_s: 0.5 });
    // One observation a second for ten minutes at 7 samples/s: the rate is the last minute's.
    let last;
    for (let t = 11_000; t <= 600_000; t += 1000) last = w.observe({ at: t, accepted: 100 + ((t - 10_000) / 1000) * 7, rejected: 0, batches: 5 });
    expect(last!.samples_per_s).toBe(7);
    expect(last!.window_s).toBe(60);
    expect(w.size).toBeLessThanOrEqual(62);
    // Many calls in the same second add no snapshots.
    for (let i = 0; i < 1000; i++) w.observe({ at: 600_500, accepted: 5000, rejected: 0, batches: 5 });
    expect(w.size).toBeLessThanOrEqual(62);
  });
});
