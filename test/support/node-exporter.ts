/**
 * A real node_exporter (Debian package prometheus-node-exporter) on a loopback port, that a
 * test can stop and start again to make a real outage. Stops only the process it started.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';

export const NODE_EXPORTER = 'prometheus-node-exporter';

export class NodeExporter {
  private child: ChildProcess | undefined;
  private stderr = '';
  constructor(readonly port: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}/metrics`;
  }

  /** Starts it and resolves once it answers a scrape (fails with a hint if it is not installed). */
  async start(): Promise<void> {
    const child = spawn(NODE_EXPORTER, [`--web.listen-address=127.0.0.1:${this.port}`], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = child;
    let spawnError: Error | undefined;
    child.on('error', (err) => (spawnError = err));
    child.stderr!.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-4000)));
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (spawnError) throw new Error(`${NODE_EXPORTER} cannot start (${spawnError.message}): apt-get install -y prometheus-node-exporter`);
      if (child.exitCode !== null) throw new Error(`${NODE_EXPORTER} exited with ${child.exitCode}:\n${this.stderr}`);
      const ok = await fetch(this.url, { signal: AbortSignal.timeout(1000) }).then(
        async (res) => (await res.arrayBuffer(), res.ok),
        () => false,
      );
      if (ok) return;
      await sleep(50);
    }
    throw new Error(`${NODE_EXPORTER} did not answer on ${this.url} within 15 s:\n${this.stderr}`);
  }

  /** Stops the process this object started (by its own handle, nothing else) and waits for its exit. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(5000).then(() => child.kill('SIGKILL'))]);
    await exited;
  }
}
