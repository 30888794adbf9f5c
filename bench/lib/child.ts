/**
 * Child processes: every stage that opens the embedded engine runs in its own process (chdb
 * holds one data directory per process and serializes its queries), and the load generator
 * must not share a process, nor an event loop, with the product it measures.
 *
 * A stage script writes its result as JSON to the file named by `--out`, so its stdout
 * stays free for progress lines and the protocol lines the orchestrator listens for.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

/** `node --import tsx <script> …` with the repository as working directory. */
export function spawnTsx(script: string, args: string[], opts: { env?: NodeJS.ProcessEnv; stdio?: 'pipe' | 'inherit' } = {}): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', script, ...args], {
    cwd: REPO_ROOT,
    env: { ...process.env, ...opts.env },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

/** Calls `onLine` for each line the child prints on stdout. */
export function onLines(stream: NodeJS.ReadableStream | null, onLine: (line: string) => void): void {
  if (!stream) return;
  let buf = '';
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    buf += chunk;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  });
}

export interface StageRun<T> {
  child: ChildProcess;
  /** Resolves with the stage's JSON result; rejects with its stderr tail if it fails. */
  result: Promise<T>;
}

/**
 * Runs a stage script to completion. `onLine` sees its stdout lines (progress, protocol);
 * stderr is kept for the error message.
 */
export function runStage<T>(script: string, args: string[], opts: { env?: NodeJS.ProcessEnv; onLine?: (line: string) => void; timeoutMs?: number } = {}): StageRun<T> {
  const dir = mkdtempSync(path.join(tmpdir(), 'um-bench-out-'));
  const out = path.join(dir, 'result.json');
  const child = spawnTsx(script, [...args, '--out', out], { env: opts.env });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (c: string) => {
    stderr = (stderr + c).slice(-8000);
  });
  onLines(child.stdout, opts.onLine ?? (() => undefined));
  const result = new Promise<T>((resolve, reject) => {
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          child.kill('SIGKILL');
          reject(new Error(`${script} timed out after ${opts.timeoutMs} ms\n${stderr}`));
        }, opts.timeoutMs)
      : undefined;
    child.on('exit', (code, signal) => {
      if (timer) clearTimeout(timer);
      try {
        if (code !== 0) throw new Error(`${script} exited with ${code ?? signal}\n${stderr}`);
        resolve(JSON.parse(readFileSync(out, 'utf8')) as T);
      } catch (err) {
        reject(err);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
  return { child, result };
}

/** Parses `--name value` pairs of a stage script (all values are strings). */
export function stageArgs(argv = process.argv.slice(2)): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    if (!a.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next === undefined || next.startsWith('--')) out[a.slice(2)] = 'true';
    else {
      out[a.slice(2)] = next;
      i++;
    }
  }
  return out;
}

/** A stage's last act: its result for the orchestrator. */
export function writeResult(file: string | undefined, value: unknown): void {
  if (!file) throw new Error('missing --out');
  writeFileSync(file, JSON.stringify(value));
}
