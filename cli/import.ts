/**
 * `usage-meter import FILE`: backfill NDJSON or CSV samples (an agent's spool, another
 * metering system) through the same validated, idempotent path as pushed samples.
 *
 * Two ways in, and why the default is what it is:
 *   --url URL --key KEY   through a running pipeline's API (`POST /v1/samples`, the
 *                         producers' endpoint): its key prefix, limits and rate limit apply,
 *                         429/503 are waited out. Works from any machine.
 *   (no --url, default)   straight into the pipeline's Redis queue (REDIS_URL, KEY_PREFIX),
 *                         for a backfill on the pipeline's own host without an API key.
 *                         Refused when no worker consumes that queue: the batches would be
 *                         acknowledged and then wait for ever. The message names the prefix
 *                         it looked at and any prefix where workers do run.
 */
import { readFileSync, statSync } from 'node:fs';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { pino } from 'pino';
import { acceptorFromConfig, type SampleSink } from '../ingest/accept.js';
import { formatImportSummary, importFile, ImportAbortedError, type ImportFormat } from '../ingest/collectors/index.js';
import { HttpSink } from '../ingest/collectors/http-sink.js';
import { ConfigError, loadConfig } from '../schemas/config.js';
import { redisKeys } from '../schemas/queues.js';
import { createBatchQueue } from '../workers/queues.js';
import { batchQueueConsumers, connectForCli } from './redis-for-cli.js';
import { settingsHelp, takeSettingFlags } from './settings-flags.js';

const HELP = `Usage: usage-meter import FILE [--url URL --key KEY | --key-file FILE] [--format ndjson|csv] [--batch-size N] [settings]

Loads wire-format samples from FILE (NDJSON or CSV with a header row; .gz accepted), in
batches, with a progress bar and a summary of accepted and rejected rows (by reason, and
the first 100 with their line numbers). Re-importing a file bills nothing twice:
duplicates are recognized by id and natural key. Exit 0 when every row was accepted, 1
when some were rejected or unreadable (or the import stopped), 2 on bad usage.

  --url URL        a running pipeline's API (e.g. http://127.0.0.1:8080): rows go through
  --key KEY        POST /v1/samples with this producer key (or --key-file FILE, which keeps
  --key-file FILE  the key out of the process list), exactly like a producer's; 429 and
                   503 are waited out (Retry-After). Use this from any other machine.
  Without --url (the default), rows go straight into the queue in Redis (REDIS_URL,
  KEY_PREFIX), and the import is refused unless a worker consumes that queue.
  --batch-size N   rows per request or batch (default 1000, at most MAX_BATCH_ITEMS)

${settingsHelp()}`;

export async function runImportCommand(argv: string[]): Promise<number> {
  const { overrides, rest } = takeSettingFlags(argv, ['--format', '--batch-size', '--url', '--key', '--key-file', '--help']);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      format: { type: 'string' },
      'batch-size': { type: 'string', default: '1000' },
      url: { type: 'string' },
      key: { type: 'string' },
      'key-file': { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help || positionals.length !== 1) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const file = positionals[0]!;
  const format = values.format as ImportFormat | undefined;
  if (format && format !== 'ndjson' && format !== 'csv') throw new ConfigError('--format must be ndjson or csv');
  const batchSize = Number(values['batch-size']);
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new ConfigError('--batch-size must be a whole number of at least 1');
  const config = loadConfig(process.env, overrides);
  const target = values.url ? httpTarget(values) : undefined;
  if (!target && (values.key || values['key-file'])) throw new ConfigError('--key and --key-file go with --url');
  const size = fileSize(file); // a missing file stops here, before anything connects
  if (target) {
    console.error(`importing through ${target.url}/v1/samples`);
    return runImport(file, size, format, Math.min(batchSize, config.MAX_BATCH_ITEMS), new HttpSink(target));
  }

  const log = pino({ name: 'usage-meter', level: config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL }, pino.destination(2));
  const redis = await connectForCli(config, log);
  const keys = redisKeys(config.KEY_PREFIX);
  const queue = createBatchQueue({ connection: redis.options, prefix: keys.bullPrefix, attempts: config.JOB_ATTEMPTS });
  try {
    const consumers = await batchQueueConsumers(queue, redis.client);
    if (consumers.unknown) {
      console.error(`warning: ${redis.description} does not list its clients, so whether a worker consumes key prefix ${config.KEY_PREFIX} cannot be checked`);
    } else if (consumers.workers === 0) {
      const elsewhere = consumers.otherPrefixes.length > 0 ? ` Workers do run under key prefix ${consumers.otherPrefixes.join(', ')}: pass --key-prefix ${consumers.otherPrefixes[0]}.` : '';
      console.error(
        `usage-meter import: no worker consumes the batch queue under key prefix ${config.KEY_PREFIX} at ${redis.description}: ` +
          `what it queued would be acknowledged and never written.${elsewhere} ` +
          `Otherwise start the pipeline (npm start) with KEY_PREFIX=${config.KEY_PREFIX}, or import through a running pipeline's API with --url and --key.`,
      );
      return 2;
    }
    const acceptor = acceptorFromConfig(config, { redis: redis.client, queue, keys });
    console.error(`importing into the queue under key prefix ${config.KEY_PREFIX} at ${redis.description} (${consumers.unknown ? 'workers unknown' : `${consumers.workers} worker connection(s)`})`);
    return await runImport(file, size, format, Math.min(batchSize, config.MAX_BATCH_ITEMS), acceptor);
  } finally {
    await queue.close();
    await redis.close();
  }
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch (err) {
    throw new ConfigError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

function httpTarget(values: { url?: string | undefined; key?: string | undefined; 'key-file'?: string | undefined }): { url: string; key: string } {
  const key = values.key ?? (values['key-file'] ? readFileSync(values['key-file'], 'utf8').trim() : undefined);
  if (!key) throw new ConfigError('--url needs --key or --key-file (a producer key)');
  let url: URL;
  try {
    url = new URL(values.url!);
  } catch {
    throw new ConfigError(`--url is not a URL: ${values.url}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError('--url must be an http(s) URL');
  return { url: url.toString().replace(/\/+$/, ''), key };
}

async function runImport(file: string, size: number, format: ImportFormat | undefined, batchSize: number, sink: SampleSink): Promise<number> {
  const bar = new cliProgress.SingleBar(
    { format: 'importing [{bar}] {percentage}% | {rows} rows | {accepted} accepted | {rejected} rejected', stream: process.stderr, hideCursor: true },
    cliProgress.Presets.shades_classic,
  );
  bar.start(size, 0, { rows: 0, accepted: 0, rejected: 0 });
  try {
    const summary = await importFile(file, {
      sink,
      batchSize,
      ...(format ? { format } : {}),
      onProgress: (p) => bar.update(p.bytesRead ?? 0, { rows: p.rows, accepted: p.accepted, rejected: p.rejected + p.parseErrors }),
    });
    bar.stop();
    console.log(formatImportSummary(summary));
    return summary.rejected + summary.parseErrors > 0 ? 1 : 0;
  } catch (err) {
    bar.stop();
    if (!(err instanceof ImportAbortedError)) throw err;
    console.log(formatImportSummary(err.summary));
    console.error(`usage-meter import: ${err.message}; re-run from line ${err.resumeFromLine} (or the whole file: duplicates are never billed twice)`);
    return 1;
  } finally {
    bar.stop();
  }
}
