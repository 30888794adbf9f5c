/**
 * Processes a fault scenario kills: the pipeline as `usage-meter start` (one process:
 * ingest + worker + rollup on the embedded engine), and a private redis-server with AOF.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';

const root = new URL('../../../', import.meta.url).pathname;

export { freePort } from '../../support/net.js';

function exitOf(child: ChildProcess): Promise<number | string | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode ?? child.signalCode);
  return new Promise((r) => child.once('exit', (code, signal) => r(code ?? signal)));
}

/** `node --import tsx cli/main.ts start` with the given settings, restartable on the same data. */
export class PipelineProcess {
  private child: ChildProcess | undefined;
  private log = '';
  private partialLine = '';
  private readonly watched = new Map<string, number>();
  starts = 0;

  /** `env` must set PORT: readiness is polled at http://127.0.0.1:PORT/readyz. */
  constructor(private readonly env: Record<string, string>) {}

  /** The running process's id (undefined while stopped). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** The HTTP port it listens on (every role serves /healthz and /readyz). */
  get port(): number {
    return Number(this.env.PORT);
  }

  /** Counts, from now on and across restarts, the printed lines that contain `text`. */
  watch(text: string): () => number {
    this.watched.set(text, this.watched.get(text) ?? 0);
    return () => this.watched.get(text) ?? 0;
  }

  /** The last 20 kB of everything the processes printed, for a failing test's message. */
  get output(): string {
    return this.log.slice(-20_000);
  }

  async start(timeoutMs = 30_000): Promise<void> {
    const child = spawn('node', ['--import', 'tsx', 'cli/main.ts', 'start'], { cwd: root, env: { ...process.env, ...this.env } });
    this.child = child;
    this.starts++;
    const take = (d: Buffer) => {
      this.log = (this.log + d).slice(-100_000);
      if (this.watched.size === 0) return;
      const lines = (this.partialLine + d).split('\n');
      this.partialLine = lines.pop()!.slice(-100_000);
      for (const line of lines) for (const [text, n] of this.watched) if (line.includes(text)) this.watched.set(text, n + 1);
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    const deadline = Date.now() + timeoutMs;
    const ready = `http://127.0.0.1:${this.env.PORT}/readyz`;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`pipeline exited during start:\n${this.output}`);
      if (Date.now() > deadline) throw new Error(`pipeline did not start in ${timeoutMs} ms:\n${this.output}`);
      const ok = await fetch(ready, { signal: AbortSignal.timeout(1000) }).then((r) => r.status === 200, () => false);
      if (ok) return;
      await sleep(20);
    }
  }

  /** SIGKILL: no handler runs, nothing is flushed or closed. */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGKILL');
    await exitOf(child);
    this.child = undefined;
  }

  /** SIGTERM: the graceful stop; resolves with the exit code (SIGKILL after 30 s). */
  async stop(): Promise<number | string | null> {
    const child = this.child;
    if (!child) return null;
    child.kill('SIGTERM');
    const exited = exitOf(child);
    const late = setTimeout(() => child.kill('SIGKILL'), 30_000);
    const code = await exited.finally(() => clearTimeout(late));
    this.child = undefined;
    return code;
  }
}

/**
 * A redis-server of our own on a loopback port, persisting only through its AOF
 * (`--save ''`), fsynced on every write (`appendfsync always`): the zero-loss setting.
 */
export class RedisServer {
  readonly dir = mkdtempSync(path.join(os.tmpdir(), 'um-faults-redis-'));
  private child: ChildProcess | undefined;
  restarts = 0;

  constructor(readonly port: number, private readonly fsync: 'always' | 'everysec' = 'always') {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', this.fsync,
        '--save', '', '--maxmemory-policy', 'noeviction'],
      { stdio: 'ignore' },
    );
    this.child = child;
    const client = new Redis({ port: this.port, host: '127.0.0.1', lazyConnect: true, retryStrategy: () => null, maxRetriesPerRequest: 0 });
    client.on('error', () => undefined);
    try {
      for (let i = 0; ; i++) {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
        const ok = await client.connect().then(async () => {
          // Loading the AOF answers LOADING until it is done.
          const persistence = await client.info('persistence');
          return /loading:0/.test(persistence);
        }, () => false);
        if (ok) return;
        client.disconnect();
        if (i > 200) throw new Error('redis-server did not come up');
        await sleep(25);
      }
    } finally {
      client.disconnect();
    }
  }

  async kill9(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGKILL');
    await exitOf(child);
    this.child = undefined;
  }

  async restart(): Promise<void> {
    this.restarts++;
    await this.start();
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child) {
      child.kill('SIGTERM');
      await exitOf(child);
      this.child = undefined;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
