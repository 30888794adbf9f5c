/**
 * `usage-meter demo` as a person runs it: its terminal output is the demo's own lines and
 * tables, never JSON log lines; the logs are in the file the last line names. Run with
 * LOG_LEVEL=info so the pipeline certainly logs (every request does): before the logs had
 * a file, those lines landed between the bills on stdout.
 */
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { deleteKeys } from './support/pipeline.js';
import { scratchDirs } from './support/temp.js';

const root = new URL('../', import.meta.url).pathname;
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const tempDir = scratchDirs();
let prefix: string | undefined;

afterAll(async () => {
  if (prefix) await deleteKeys(redisUrl, prefix);
});

function runDemo(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('node', ['--import', 'tsx', 'cli/main.ts', 'demo', ...args], { cwd: root, env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** A line a log library wrote: a JSON object (pino's lines carry level and time). */
const isJsonLine = (line: string) => {
  const t = line.trim();
  if (!t.startsWith('{')) return false;
  try {
    return typeof JSON.parse(t) === 'object';
  } catch {
    return false;
  }
};

describe('npm run demo', () => {
  it('prints bills and summaries without JSON log lines, and names the log file', async () => {
    const dataDir = path.join(tempDir('um-demo-'), 'data');
    const r = await runDemo(['--accounts', '3', '--resources', '6', '--hours', '1', '--step', '600', '--data-dir', dataDir, '--redis-url', redisUrl], { LOG_LEVEL: 'info' });
    prefix = /--key-prefix (\S+)/.exec(r.stdout)?.[1];
    expect(r.code, r.stderr).toBe(0);

    // The human output is there…
    expect(r.stdout).toContain('Bill for ');
    expect(r.stdout).toContain('Capacity by region');
    expect(r.stdout).toMatch(/✓ all 3 accounts' totals equal/);
    // …and no line of either stream is a log line.
    const stdoutJson = r.stdout.split('\n').filter(isJsonLine);
    const stderrJson = r.stderr.split('\n').filter(isJsonLine);
    expect(stdoutJson, 'JSON lines on stdout').toEqual([]);
    expect(stderrJson, 'JSON lines on stderr').toEqual([]);

    // The last line names the log file, which holds the pipeline's logs.
    const named = /Logs: (\S+) \((no warnings|\d+ warnings?)/.exec(r.stderr);
    expect(named, r.stderr).not.toBeNull();
    const logFile = named![1]!;
    expect(path.resolve(root, logFile)).toBe(path.join(dataDir, 'demo.log'));
    expect(existsSync(path.resolve(root, logFile))).toBe(true);
    const lines = readFileSync(path.resolve(root, logFile), 'utf8').split('\n').filter((l) => l !== '');
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.every(isJsonLine)).toBe(true);
    // The request log of the samples the demo posted is among them (LOG_LEVEL=info).
    expect(lines.some((l) => JSON.parse(l).req?.route === '/v1/samples')).toBe(true);
    // The warning count it states is the file's own.
    const warnings = lines.filter((l) => JSON.parse(l).level >= 40).length;
    expect(named![2]).toBe(warnings === 0 ? 'no warnings' : `${warnings} warning${warnings === 1 ? '' : 's'}`);
  });
});
