/**
 * `usage-meter privacy-scan [FILE…]` (npm run privacy:scan): scans every analytics table,
 * and any dataset or account export files given, for identifiers: the ids billing holds
 * now, the fingerprints of ids erased since, and identifier patterns. Exits 1 on any hit.
 * It prints what it read and what it compared against, so a clean result can be judged.
 * In embedded mode the data directory belongs to one process: run it while the pipeline
 * is stopped.
 */
import { pino } from 'pino';
import { describeClickHouse } from '../lib/clickhouse.js';
import { openExistingEngine } from './data-dir.js';
import { liveIdentifierCounts, scanAnalytics, scanFile, type ScanReport } from '../queries/leak-scan.js';
import { ErasedFingerprints } from '../domain/erased-identifiers.js';
import { loadConfig } from '../schemas/config.js';
import { redisKeys } from '../schemas/queues.js';
import { migrate } from '../lib/migrate.js';
import { connectForCli } from './redis-for-cli.js';
import { settingsHelp, takeSettingFlags } from './settings-flags.js';

const HELP = `Usage: usage-meter privacy-scan [FILE…] [settings]

Reads every string value of every analytics table, and of each FILE (a dataset or account
export: .csv, .ndjson, .json or .parquet), and checks it against the account and resource
ids in billing data, against the fingerprints of identifiers erased since (kept in Redis
under KEY_PREFIX: billing no longer holds them), and against identifier patterns (e-mail,
IP, host name, ARN, UUID, long tokens). Prints what it read (tables and files, rows, bytes,
distinct values) and what it compared against.
Exits 0 when clean, 1 on any hit (each printed), 2 on bad usage.

${settingsHelp()}`;

const n = (x: number) => x.toLocaleString('en-US');
const size = (bytes: number) => (bytes < 1024 ? `${bytes} B` : bytes < 1024 ** 2 ? `${(bytes / 1024).toFixed(1)} KiB` : `${(bytes / 1024 ** 2).toFixed(1)} MiB`);

export async function runPrivacyScanCommand(argv: string[]): Promise<number> {
  const { overrides, rest } = takeSettingFlags(argv, ['--help']);
  if (rest.includes('--help')) {
    console.log(HELP);
    return 0;
  }
  const config = loadConfig(process.env, overrides);
  // A missing or empty data directory would scan nothing and report "no identifiers found".
  const ch = openExistingEngine(config);
  try {
    await migrate(ch);
    // The erased list lives in Redis: without it erased customers' ids would pass unseen.
    const log = pino({ name: 'usage-meter', level: config.LOG_LEVEL === 'info' ? 'warn' : config.LOG_LEVEL }, pino.destination(2));
    const redis = await connectForCli(config, log);
    try {
      const erased = await ErasedFingerprints.open(redis.client, redisKeys(config.KEY_PREFIX));
      const live = await liveIdentifierCounts(ch);
      const reports: ScanReport[] = [
        await scanAnalytics(ch, { erased, labelPattern: config.ANALYTICS_LABEL_PATTERN, labelValues: config.ANALYTICS_LABEL_VALUES, k: config.K_ANONYMITY }),
      ];
      for (const file of rest) reports.push(await scanFile(ch, file, { erased }));
      const hits = reports.flatMap((r) => r.hits);
      for (const h of hits) console.log(`LEAK ${h.source}: ${JSON.stringify(h.value)} ${h.reason}`);

      console.log('scanned:');
      for (const s of reports.flatMap((r) => r.scanned)) {
        console.log(`  ${s.source}: ${n(s.rows)} rows, ${size(s.bytes)}, ${s.columns} text column(s), ${n(s.values)} distinct values checked`);
      }
      for (const c of reports.flatMap((r) => r.truncatedColumns)) console.log(`  NOTE ${c}: only its first 200,000 distinct values were checked`);
      const e = erased.counts;
      console.log(
        `compared against: ${n(live.liveAccounts)} live account ids, ${n(live.liveResources)} live resource ids and the ids of ${n(live.rawSampleRows)} raw sample rows (billing); ` +
          `${n(e.accounts)} erased account(s) and ${n(e.identifiers)} erased identifier(s) by fingerprint (${redis.description}, key prefix ${config.KEY_PREFIX})` +
          (e.dropped > 0 ? `; ${n(e.dropped)} fingerprint(s) were dropped before their expiry by the list's bound` : ''),
      );
      if (!e.keyed) console.log(`  NOTE no erasure has finished under key prefix ${config.KEY_PREFIX}: if erasures ran under another prefix, pass --key-prefix`);
      if (live.liveAccounts + live.liveResources + live.rawSampleRows + e.accounts + e.identifiers === 0) {
        console.log('  WARNING no identifiers to compare against (empty billing, no erasures): only the identifier patterns were checked');
      }
      const sources = reports.reduce((a, r) => a + r.sources, 0);
      const values = reports.reduce((a, r) => a + r.values, 0);
      console.log(`${describeClickHouse(config)}: scanned ${sources} columns, ${values} distinct values: ${hits.length === 0 ? 'no identifiers found' : `${hits.length} hit(s)`}`);
      return hits.length === 0 ? 0 : 1;
    } finally {
      await redis.close();
    }
  } finally {
    await ch.close();
  }
}
