/** `usage-meter migrate`: applies the ClickHouse migrations and exits. */
import { createClickHouse, describeClickHouse } from '../lib/clickhouse.js';
import { loadConfig } from '../schemas/config.js';
import { migrate } from '../lib/migrate.js';
import { settingsHelp, takeSettingFlags } from './settings-flags.js';

export async function runMigrateCommand(argv: string[]): Promise<number> {
  if (argv.includes('--help')) {
    console.log(`Usage: usage-meter migrate [settings]\n\nApplies schemas/migrations/*.sql in order, once each.\n\n${settingsHelp()}`);
    return 0;
  }
  const config = loadConfig(process.env, takeSettingFlags(argv).overrides);
  const ch = createClickHouse(config);
  try {
    const applied = await migrate(ch);
    console.log(`${describeClickHouse(config)}: ${applied} migration(s) applied`);
    return 0;
  } finally {
    await ch.close();
  }
}
