/**
 * `start` with INGEST_PROCESSES = N > 0 (ROLE=all): this process keeps the engine, the
 * workers and the read API, listening on loopback only; N ingest processes (node's cluster
 * module, each `start --role ingest`) share PORT, serve the ingest routes themselves and
 * forward every other request to this process (upstream-proxy.ts). HTTP parsing,
 * validation and enqueueing then run beside the engine instead of on its event loop; the
 * embedded engine still has a single owner, as its data directory requires.
 *
 * Lifecycle: an ingest process that dies is started again (after a pause that grows while
 * it keeps dying); SIGTERM/SIGINT stop the ingest processes first (nothing new is taken),
 * then this one; if this process is killed outright, node's cluster ends the ingest
 * processes with it (a worker exits when its IPC channel closes), so no orphan holds PORT.
 *
 * /metrics (forwarded here) adds up every process's series: counters summed, gauges of the
 * ingest processes summed with ours (prom-client's cluster aggregation).
 */
import cluster, { type Worker } from 'node:cluster';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { Config } from '../schemas/config.js';
import { startPipeline, type Pipeline } from './pipeline.js';
import { metricsCollector } from './split-metrics.js';
/** Restart pause after an ingest process dies: doubles per death within a minute, capped. */
const RESTART_MIN_MS = 250;
const RESTART_MAX_MS = 10_000;

export interface SplitPipeline {
  /** The public address (PORT, shared by the ingest processes). */
  url: string;
  engine: Pipeline;
  /** Process ids of the ingest processes running now. */
  ingestPids(): number[];
  close(): Promise<void>;
}

/**
 * `settings` are the command line's settings flags: the ingest processes get them as
 * environment variables (they inherit the rest of the environment).
 */
export async function startSplitPipeline(config: Config, log: Logger, settings: Record<string, string> = {}): Promise<SplitPipeline> {
  const workers = new Set<Worker>();
  const ingestMetrics = metricsCollector(() => [...workers]);

  const engine = await startPipeline({ ...config, HOST: '127.0.0.1', PORT: 0 }, log, { ingestProcessesMetrics: ingestMetrics });

  // The ingest processes: this program again, as `start --role ingest`, sharing PORT. Each
  // accepts its own connections (no round-robin through this busy event loop).
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  cluster.setupPrimary({ exec: process.argv[1], args: ['start'], execArgv: process.execArgv, silent: false });
  const env = {
    ...settings,
    ROLE: 'ingest',
    UPSTREAM_URL: engine.url,
    INGEST_PROCESSES: '0',
    // Pull collectors run once, here, never once per ingest process.
    COLLECTOR_TARGETS: '',
    COLLECTOR_TARGETS_FILE: '',
  };
  let stopping = false;
  let deaths: number[] = [];
  const fork = (): Promise<Worker> =>
    new Promise((resolve, reject) => {
      const w = cluster.fork(env);
      workers.add(w);
      const failedStart = (code: number | null) => reject(new Error(`an ingest process exited during its start (code ${code})`));
      w.once('exit', failedStart);
      w.once('listening', () => {
        w.off('exit', failedStart);
        w.on('exit', (code, signal) => {
          workers.delete(w);
          if (stopping) return;
          const now = Date.now();
          deaths = [...deaths.filter((t) => now - t < 60_000), now];
          const pauseMs = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** (deaths.length - 1));
          log.error({ pid: w.process.pid, code, signal, restartInMs: pauseMs }, 'an ingest process died; starting another');
          void sleep(pauseMs).then(() => (stopping ? undefined : fork().catch((err: unknown) => log.error({ err }, 'could not start an ingest process'))));
        });
        resolve(w);
      });
    });

  try {
    for (let i = 0; i < config.INGEST_PROCESSES; i++) await fork();
  } catch (err) {
    stopping = true;
    for (const w of workers) w.process.kill('SIGKILL');
    await engine.close();
    throw err;
  }
  const host = config.HOST.includes(':') ? `[${config.HOST}]` : config.HOST;
  const url = `http://${host}:${config.PORT}`;
  log.info({ url, ingestProcesses: config.INGEST_PROCESSES, engineProcess: engine.url }, 'usage-meter is running (ingest in separate processes)');

  return {
    url,
    engine,
    ingestPids: () => [...workers].map((w) => w.process.pid).filter((pid): pid is number => pid !== undefined),
    async close() {
      stopping = true;
      // Ingest first: each stops taking requests and enqueues what it acknowledged.
      await Promise.all(
        [...workers].map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.isDead()) return resolve();
              w.once('exit', () => resolve());
              w.process.kill('SIGTERM');
            }),
        ),
      );
      await engine.close();
    },
  };
}
