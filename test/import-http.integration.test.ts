/**
 * `import` never reports success for rows nobody will write: through the HTTP API
 * (`--url --key`) it goes the producers' way whatever key prefix the pipeline runs under,
 * waits out 429/503 by Retry-After and counts every rejection with its reason; straight
 * into Redis it refuses a key prefix no worker consumes, naming it and the one that runs.
 */
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runImportCommand } from '../cli/import.js';
import { importFile } from '../ingest/collectors/import.js';
import { HttpSink } from '../ingest/collectors/http-sink.js';
import { ensureFingerprintKey, fingerprint } from '../domain/erased-identifiers.js';
import { KEYS, startTestPipeline, uniquePrefix, type TestPipeline } from './support/pipeline.js';

const fixture = new URL('./fixtures/import-samples.ndjson', import.meta.url).pathname;
const dir = mkdtempSync(path.join(tmpdir(), 'import-http-'));
const HOUR = 3_600_000;
const end = Math.floor(Date.now() / HOUR) * HOUR;

/** Runs the command, capturing what it prints. */
async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (s: string) => out.push(String(s));
  console.error = (s: string) => err.push(String(s));
  try {
    return { code: await runImportCommand(args), out: out.join('\n'), err: err.join('\n') };
  } finally {
    [console.log, console.error] = [log, error];
  }
}

const sample = (i: number, extra: Record<string, unknown> = {}) => ({
  id: `imp-${i}`, account_id: 'acct-imp', resource_id: `vm-imp-${i % 3}`, resource_type: 'vm', region: 'eu-west-1',
  metric: 'cpu', value: 1.5, ts: end - (i + 1) * 1000, interval_s: 1, ...extra,
});

describe('import through the HTTP API', () => {
  let p: TestPipeline;
  beforeAll(async () => {
    p = await startTestPipeline('import-http', { RAW_RETENTION_DAYS: '3650' }); // the fixture is from 2025
  });
  afterAll(async () => {
    await p?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('posts through /v1/samples whatever prefix the pipeline runs under, reports bad rows by line and reason, bills re-imports once', async () => {
    // No --key-prefix: the default prefix has no worker here, and it does not matter over HTTP.
    const args = [fixture, '--url', p.url, '--key', KEYS.producer, '--batch-size', '2'];
    const first = await run(args);
    expect(first.code).toBe(1); // the fixture holds bad rows on purpose
    expect(first.err).toContain(`importing through ${p.url}/v1/samples`);
    expect(first.out).toContain('rows: 6  accepted: 3  rejected: 2  unreadable: 1');
    expect(first.out).toContain('rejected and unreadable rows by reason:');
    for (const reason of ['value: value must not be negative', '(line): not valid JSON', 'interval_s: interval_s must be at most 3600']) {
      expect(first.out).toMatch(new RegExp(`^\\s+1  ${reason.replace(/[()]/g, '\\$&')}$`, 'm'));
    }
    expect(first.out).toContain('line 4: value: value must not be negative');
    expect(first.out).not.toContain(KEYS.producer);
    expect((await run(args)).code).toBe(1);
    await p.waitIdle();
    const res = await p.get('/v1/accounts/acct-1/usage?from=2025-03-01&to=2025-03-02');
    expect(res.body.rows.find((r: { metric: string }) => r.metric === 'cpu').base_total).toBe('12.5'); // imported twice, billed once
  });

  it('counts every rejection of a batch, beyond the 100 the API lists, and names account_erased', async () => {
    // acct-gone is on the erased list (as an erasure leaves it): its rows are refused by code.
    const key = await ensureFingerprintKey(p.redis.client, p.redisKeys);
    await p.redis.client.zadd(p.redisKeys.erasedAccounts, Date.now() + HOUR, fingerprint(key, 'acct-gone'));
    await sleep(1100); // ingest reads the key at most a second late
    const rows = [
      ...Array.from({ length: 150 }, (_, i) => sample(i, { value: -1 })),
      sample(200),
      sample(201, { account_id: 'acct-gone' }),
    ];
    const file = path.join(dir, 'many-bad.ndjson');
    writeFileSync(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const summary = await importFile(file, { sink: new HttpSink({ url: p.url, key: KEYS.producer }), batchSize: 1000 });
    expect(summary).toMatchObject({ rows: 152, accepted: 1, rejected: 151, parseErrors: 0, batches: 1 });
    expect(summary.errors).toHaveLength(100);
    expect(summary.errorsOmitted).toBe(51);
    expect(Object.values(summary.reasons).reduce((a, b) => a + b, 0)).toBe(151);
    // The erased account's row is the 152nd: past the listed 100, so only counted; in a batch of its own it is named.
    const alone = path.join(dir, 'gone.ndjson');
    writeFileSync(alone, JSON.stringify(sample(300, { account_id: 'acct-gone' })) + '\n');
    const out = await run([alone, '--url', p.url, '--key', KEYS.producer]);
    expect(out.code).toBe(1);
    expect(out.out).toMatch(/1\s+account_erased/);
    expect(out.out).toContain('line 1 [account_erased]: account_id: this account was erased');
  });

  it('stops on a refused key with the server\'s answer, and on a bad --url before reading anything', async () => {
    const refused = await run([fixture, '--url', p.url, '--key', KEYS.billing]);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/answered 403 \w+: .*\(--key must be a producer key of that pipeline\)/);
    expect(refused.err).toContain('re-run from line 1');
    expect(refused.err + refused.out).not.toContain(KEYS.billing);
    await expect(runImportCommand([fixture, '--url', 'not a url', '--key', KEYS.producer])).rejects.toThrow('--url is not a URL');
    await expect(runImportCommand([fixture, '--url', p.url])).rejects.toThrow('--url needs --key or --key-file');
    await expect(runImportCommand([fixture, '--key', KEYS.producer])).rejects.toThrow('--key and --key-file go with --url');
  });

  it('refuses to queue into Redis under a prefix no worker consumes, naming it and the prefix that runs', async () => {
    const unused = uniquePrefix('nobody');
    const r = await run([fixture, '--key-prefix', unused, '--raw-retention-days', '3650']);
    expect(r.code).toBe(2);
    expect(r.err).toContain(`no worker consumes the batch queue under key prefix ${unused}`);
    expect(r.err).toContain(p.config.KEY_PREFIX); // where workers do run
    expect(r.err).toContain('--url and --key');
    expect(r.out).not.toContain('accepted');
    // Nothing was queued there (BullMQ writes only its queue's meta key on opening it).
    const left = await p.redis.client.keys(`${unused}:*`);
    expect(left.filter((k) => !k.endsWith(':bull:batches:meta'))).toEqual([]);
    if (left.length) await p.redis.client.del(...left);
    // Under the pipeline's own prefix the same import goes straight into its queue.
    const ok = await run([fixture, '--key-prefix', p.config.KEY_PREFIX, '--raw-retention-days', '3650']);
    expect(ok.code).toBe(1);
    expect(ok.err).toMatch(new RegExp(`importing into the queue under key prefix ${p.config.KEY_PREFIX} .*\\(\\d+ worker connection`));
    expect(ok.out).toContain('accepted: 3');
  });
});

describe('import over HTTP under back-pressure', () => {
  let server: Server;
  let url: string;
  const answers: number[] = [];
  beforeAll(async () => {
    // A stand-in for an ingest under load: the first two requests are refused with
    // Retry-After (one 503, one 429), the rest accepted.
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const n = answers.length;
        const status = n === 0 ? 503 : n === 1 ? 429 : 202;
        answers.push(status);
        if (status !== 202) {
          res.writeHead(status, { 'content-type': 'application/json', 'retry-after': n === 0 ? '3' : '1' });
          res.end(JSON.stringify({ error: { code: n === 0 ? 'backpressure' : 'rate_limited', message: 'later' } }));
          return;
        }
        res.writeHead(202, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ accepted: JSON.parse(body).length, rejected: [], rejected_count: 0, batch_id: 'b' }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('waits as long as Retry-After says and re-sends the same batch', async () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'import-bp-')), 'five.ndjson');
    writeFileSync(file, Array.from({ length: 5 }, (_, i) => JSON.stringify(sample(i))).join('\n'));
    const waits: number[] = [];
    const summary = await importFile(file, { sink: new HttpSink({ url, key: 'k'.repeat(20) }), batchSize: 5, sleep: async (ms) => void waits.push(ms) });
    expect(answers).toEqual([503, 429, 202]);
    expect(waits).toEqual([3000, 1000]);
    expect(summary).toMatchObject({ rows: 5, accepted: 5, rejected: 0, batches: 1 });
  });
});
