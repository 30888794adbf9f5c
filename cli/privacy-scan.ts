/**
 * `usage-meter privacy-scan [FILE…]` (npm run privacy:scan): scans every analytics table,
 * and any dataset export files given, for identifiers. Exits 1 on any hit. In embedded mode
 * the data directory belongs to one process: run it while the pipeline is stopped.
 */
import { describeClickHouse } from '../lib/clickhouse.js';
import { openExistingEngine } from './data-dir.js';
import { scanAnalytics, scanFile, type ScanReport } from '../queries/leak-scan.js';
import { loadConfig } from '../schemas/config.js';
import { migrate } from '../lib/migrate.js';
import { settingsHelp, takeSettingFlags } from './settings-flags.js';

const HELP = `Usage: usage-meter privacy-scan [FILE…] [settings]

Reads every string value of every analytics table, and of each dataset export FILE
(.csv, .ndjson or .parquet), and checks it against the account and resource ids in billing
data and against identifier patterns (e-mail, IP, host name, ARN, UUID, long tokens).
Exits 0 when clean, 1 on any hit (each printed), 2 on bad usage.

${settingsHelp()}`;

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
    const reports: ScanReport[] = [await scanAnalytics(ch, { labelPattern: config.ANALYTICS_LABEL_PATTERN, labelValues: config.ANALYTICS_LABEL_VALUES, k: config.K_ANONYMITY })];
    for (const file of rest) reports.push(await scanFile(ch, file));
    const hits = reports.flatMap((r) => r.hits);
    const sources = reports.reduce((a, r) => a + r.sources, 0);
    const values = reports.reduce((a, r) => a + r.values, 0);
    for (const h of hits) console.log(`LEAK ${h.source}: ${JSON.stringify(h.value)} ${h.reason}`);
    console.log(`${describeClickHouse(config)}: scanned ${sources} columns, ${values} distinct values: ${hits.length === 0 ? 'no identifiers found' : `${hits.length} hit(s)`}`);
    return hits.length === 0 ? 0 : 1;
  } finally {
    await ch.close();
  }
}
