/**
 * `usage-meter import FILE`: backfill NDJSON or CSV samples (an agent's spool, another
 * metering system) through the same validated, idempotent path as pushed samples. It
 * needs only Redis: a running pipeline's workers write and bill what it queues.
 */
import { statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { acceptorFromConfig } from '../ingest/accept.js';
import { formatImportSummary, importFile, type ImportFormat } from '../ingest/collectors/index.js';
import { createLogger } from '../lib/log.js';
import { connectRedis } from '../lib/redis.js';
import { loadConfig } from '../schemas/config.js';
import { redisKeys } from '../schemas/queues.js';
import { createBatchQueue } from '../workers/queues.js';
import { settingsHelp, takeSettingFlags } from './settings-flags.js';

const HELP = `Usage: usage-meter import FILE [--format ndjson|csv] [--batch-size N] [settings]

Loads wire-format samples from FILE (NDJSON or CSV with a header row; .gz accepted) into
the pipeline's queue, in batches, with a progress bar and a summary of accepted and
rejected rows (with line numbers). Re-importing a file bills nothing twice: duplicates are
recognized by id and natural key. A running pipeline (npm start) aggregates the rows.

${settingsHelp()}`;

export async function runImportCommand(argv: string[]): Promise<number> {
  const { overrides, rest } = takeSettingFlags(argv, ['--format', '--batch-size', '--help']);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: { format: { type: 'string' }, 'batch-size': { type: 'string', default: '1000' }, help: { type: 'boolean', default: false } },
  });
  if (values.help || positionals.length !== 1) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const file = positionals[0]!;
  const format = values.format as ImportFormat | undefined;
  if (format && format !== 'ndjson' && format !== 'csv') throw new Error('--format must be ndjson or csv');
  const config = loadConfig(process.env, overrides);
  const log = createLogger(config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL);
  const redis = await connectRedis({ url: config.REDIS_URL, dataDir: config.DATA_DIR, log, startPrivateIfDown: false });
  const keys = redisKeys(config.KEY_PREFIX);
  const queue = createBatchQueue({ connection: redis.options, prefix: keys.bullPrefix, attempts: config.JOB_ATTEMPTS });
  const acceptor = acceptorFromConfig(config, { redis: redis.client, queue, keys });
  const bar = new cliProgress.SingleBar(
    { format: 'importing [{bar}] {percentage}% | {rows} rows | {accepted} accepted | {rejected} rejected', stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(statSync(file).size, 0, { rows: 0, accepted: 0, rejected: 0 });
  try {
    const summary = await importFile(file, {
      sink: acceptor,
      batchSize: Math.min(Number(values['batch-size']), config.MAX_BATCH_ITEMS),
      ...(format ? { format } : {}),
      onProgress: (p) => bar.update(p.bytesRead ?? 0, { rows: p.rows, accepted: p.accepted, rejected: p.rejected + p.parseErrors }),
    });
    bar.stop();
    console.log(formatImportSummary(summary));
    return summary.rejected + summary.parseErrors > 0 ? 1 : 0;
  } finally {
    bar.stop();
    await queue.close();
    await redis.close();
  }
}
