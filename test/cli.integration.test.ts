/**
 * The CLI as a user runs it: help, errors that name the setting, and a graceful stop of
 * `start` under load that loses nothing it acknowledged and logs no secret or identifier.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { freePort } from './support/net.js';
import { describe, expect, it } from 'vitest';
import { expectedTotals, type SentSample } from './support/oracle.js';
import { KEYS, startTestPipeline, uniquePrefix } from './support/pipeline.js';

const root = new URL('../', import.meta.url).pathname;
const cli = (args: string[], env: Record<string, string> = {}) =>
  spawnSync('node', ['--import', 'tsx', 'cli/main.ts', ...args], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8' });


describe('command line', () => {
  it('prints help for the tool and for each command', () => {
    const top = cli(['--help']);
    expect(top.status).toBe(0);
    for (const c of ['start', 'demo', 'simulate', 'migrate']) expect(top.stdout).toContain(`  ${c}`);
    const start = cli(['start', '--help']);
    expect(start.status).toBe(0);
    expect(start.stdout).toContain('--data-dir');
    expect(start.stdout).toContain('DATA_DIR');
  });

  it('stops on a bad setting with a message naming it', () => {
    const r = cli(['start', '--port', 'eighty']);
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/invalid configuration:\n\s+PORT:/);
    const unknown = cli(['start', '--colour', 'blue']);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toContain('unknown option --colour');
    const cmd = cli(['frobnicate']);
    expect(cmd.status).toBe(2);
    expect(cmd.stderr).toContain('unknown command "frobnicate"');
  });

  it('checks the pull-target list before connecting to anything', () => {
    // Redis is unreachable here: the target list's field error must come first.
    const r = cli(['start', '--collector-targets', '[{"id":"a","url":"host:9100/metrics","mapping":"node_exporter","labels":{"account_id":"a","resource_id":"r"}}]', '--redis-url', 'redis://127.0.0.1:1', '--data-dir', mkdtempSync(path.join(os.tmpdir(), 'um-cli-targets-'))]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain('targets[0].url: url must be an http(s) URL');
    expect(r.stderr).not.toMatch(/redis/i);
  });

  it('refuses split roles on the embedded engine', () => {
    const r = cli(['start', '--role', 'worker']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--role worker needs CLICKHOUSE_URL');
  });
});

describe('import and privacy-scan say how they work', () => {
  it('import offers --url/--key and says what the default does; privacy-scan says it checks erased fingerprints', () => {
    const imp = cli(['import', '--help']);
    expect(imp.status).toBe(0);
    expect(imp.stdout).toContain('--url URL');
    expect(imp.stdout).toContain('Without --url (the default), rows go straight into the queue in Redis');
    const scan = cli(['privacy-scan', '--help']);
    expect(scan.status).toBe(0);
    expect(scan.stdout).toContain('fingerprints of identifiers erased since');
    const bad = cli(['import', 'whatever.ndjson', '--url', 'http://127.0.0.1:1']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('--url needs --key or --key-file');
    const missing = cli(['import', 'no-such-file.ndjson', '--url', 'http://127.0.0.1:1', '--key', 'x'.repeat(20)]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toContain('cannot read no-such-file.ndjson: ENOENT');
  });
});

describe('tools that read a data directory', () => {
  it('refuse a missing or empty one instead of reporting nothing found', () => {
    const empty = mkdtempSync(path.join(os.tmpdir(), 'um-cli-empty-'));
    const scan = cli(['privacy-scan', '--data-dir', empty]);
    expect(scan.status).toBe(2);
    expect(scan.stderr).toContain(`no pipeline data in ${empty}`);
    expect(scan.stdout).not.toContain('no identifiers found');
    const query = cli(['query', 'capacity/fleet-size', '--data-dir', path.join(empty, 'nowhere')]);
    expect(query.status).toBe(2);
    expect(query.stderr).toContain('no pipeline data in');
  });

  it('say that a running pipeline holds the directory, and how to read through it', async () => {
    const p = await startTestPipeline('cli-locked');
    try {
      const query = cli(['query', 'capacity/fleet-size', '--data-dir', p.dataDir]);
      expect(query.status).toBe(2);
      expect(query.stderr).toContain(`(process ${process.pid}) is running on ${p.dataDir}: read through it with --url and --key`);
      const scan = cli(['privacy-scan', '--data-dir', p.dataDir]);
      expect(scan.status).toBe(2);
      expect(scan.stderr).toContain(`is running on ${p.dataDir}`);
    } finally {
      await p.stop();
    }
  });
});

describe('graceful stop', () => {
  it('loses nothing acknowledged when SIGTERM arrives under load, and logs no key or account id', async () => {
    const dataDir = mkdtempSync(path.join(os.tmpdir(), 'um-stop-'));
    const prefix = uniquePrefix('stop');
    const port = await freePort();
    const apiKeys = Object.entries(KEYS).map(([role, secret]) => `${role}:${role}-test:${secret}`).join(',');
    const child = spawn('node', ['--import', 'tsx', 'cli/main.ts', 'start'], {
      cwd: root,
      env: { ...process.env, DATA_DIR: dataDir, KEY_PREFIX: prefix, PORT: String(port), API_KEYS: apiKeys, LOG_LEVEL: 'info' },
    });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    while (!output.includes('usage-meter is running')) {
      if (child.exitCode !== null) throw new Error(output);
      await sleep(50);
    }

    const hourEnd = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    const acknowledged: SentSample[] = [];
    const send = async (b: number) => {
      const batch = Array.from({ length: 200 }, (_, i) => ({
        id: `stop-${b}-${i}`, account_id: `acct-stop-${b % 5}`, resource_id: `vm-stop-${i % 20}`, resource_type: 'vm', region: 'eu-west-1',
        metric: 'cpu', value: 1.5, ts: hourEnd - (b * 200 + i + 1) * 1000, interval_s: 1,
      })) as SentSample[];
      try {
        const res = await fetch(`http://127.0.0.1:${port}/v1/samples`, {
          method: 'POST', headers: { authorization: `Bearer ${KEYS.producer}`, 'content-type': 'application/json' }, body: JSON.stringify(batch),
        });
        if (res.status === 202) acknowledged.push(...batch);
      } catch {
        // refused once the server stopped listening: not acknowledged, so not owed
      }
    };
    const load = (async () => {
      for (let b = 0; b < 40; b++) await Promise.all([send(2 * b), send(2 * b + 1)]);
    })();
    while (acknowledged.length < 2000) await sleep(10);
    child.kill('SIGTERM');
    await load;
    expect(await exited).toBe(0);
    expect(output).toContain('stopping: finishing work in progress');
    expect(acknowledged.length).toBeGreaterThan(0);

    // Everything acknowledged is billed once the pipeline runs again on the same data.
    const p = await startTestPipeline('stop', { DATA_DIR: dataDir, KEY_PREFIX: prefix });
    try {
      await p.waitIdle();
      const oracle = expectedTotals(acknowledged);
      for (let a = 0; a < 5; a++) {
        const res = await p.get(`/v1/accounts/acct-stop-${a}/usage?from=${hourEnd - 24 * 3_600_000}&to=${hourEnd}`);
        const want = oracle.get(`acct-stop-${a}|cpu`);
        expect(res.body.rows.find((r: { metric: string }) => r.metric === 'cpu')?.base_total).toBe(want);
      }
    } finally {
      await p.stop();
    }
    for (const secret of Object.values(KEYS)) expect(output).not.toContain(secret);
    expect(output).not.toContain('acct-stop-');
  });
});
