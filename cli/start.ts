/** `usage-meter start`: runs the pipeline until SIGINT/SIGTERM, then stops gracefully. */
import cluster from 'node:cluster';
import { startPipeline } from '../app/pipeline.js';
import { startSplitPipeline } from '../app/process-split.js';
import { createLogger } from '../lib/log.js';
import { loadConfig } from '../schemas/config.js';
import { settingsHelp, takeSettingFlags } from './settings-flags.js';

const HELP = `Usage: usage-meter start [settings]

Runs the pipeline. With no ROLE it runs ingest, workers and the API in one process on the
embedded ClickHouse under DATA_DIR (default ./.data). --ingest-processes N moves ingest
into N processes of its own that share --port and forward every other route to this one
(measured not to pay on 2 cores: see the README). With CLICKHOUSE_URL set, processes can
be split: --role ingest | worker | api.

Stops on SIGINT/SIGTERM: refuses new requests, finishes jobs in progress, closes Redis
and ClickHouse. Nothing acknowledged is lost.

${settingsHelp()}`;

export async function runStartCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(HELP);
    return 0;
  }
  const { overrides } = takeSettingFlags(argv);
  const config = loadConfig(process.env, overrides);
  if (config.ROLE !== 'all' && !config.CLICKHOUSE_URL && config.ROLE !== 'ingest') {
    // Embedded ClickHouse locks its data directory: only one process can own it.
    console.error(`usage-meter start: --role ${config.ROLE} needs CLICKHOUSE_URL (the embedded engine serves one process: use --role all)`);
    return 2;
  }
  const log = createLogger(config.LOG_LEVEL);
  const pipeline = config.ROLE === 'all' && config.INGEST_PROCESSES > 0
    ? await startSplitPipeline(config, log, overrides).then((split) => ({ ...split.engine, close: () => split.close() }))
    : await startPipeline(config, log);
  if (pipeline.apiKeysFile) log.info({ file: pipeline.apiKeysFile }, 'API_KEYS not set: using the generated keys in this file');

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn('second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'stopping: finishing work in progress');
      pipeline.close().then(resolve, (err: unknown) => {
        log.error({ err }, 'error while stopping');
        resolve();
      });
    };
    // An ingest process of the split stops when the engine's process tells it to (SIGTERM),
    // not on the terminal's Ctrl-C, which reaches the whole process group at once.
    if (cluster.isWorker) process.on('SIGINT', () => undefined);
    else process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
  log.info('stopped');
  // Its channel to the engine's process would keep an ingest process of the split alive.
  if (cluster.isWorker) cluster.worker?.disconnect();
  return 0;
}
