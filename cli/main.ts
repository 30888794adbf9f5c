/**
 * The command line: `usage-meter <command> [options]`. Every command has --help.
 * Settings flags (--data-dir, --port, --role, …) override the environment variable of the
 * same name (DATA_DIR, PORT, ROLE, …); see README.md for the full table.
 */
import { ConfigError } from '../schemas/config.js';
import { runStartCommand } from './start.js';

interface Command {
  summary: string;
  run: (argv: string[]) => Promise<number | void>;
}

const COMMANDS: Record<string, Command> = {
  start: { summary: 'run the pipeline (ingest + workers + API by default; --role to split)', run: runStartCommand },
  demo: {
    summary: 'simulate a fleet for 24 h, push it through the API, print bills and a capacity summary',
    run: async (argv) => (await import('./demo.js')).runDemoCommand(argv),
  },
  simulate: {
    summary: 'generate fleet samples as NDJSON, or POST them to a running pipeline',
    run: async (argv) => (await import('../sim/cli.js')).runSimulateCommand(argv),
  },
  export: {
    summary: "write every account's totals for a billing period to NDJSON or CSV",
    run: async (argv) => (await import('./export.js')).runExportCommand(argv),
  },
  coverage: {
    summary: 'per metric of an account and period: seconds covered, measured and held, and gap hours',
    run: async (argv) => (await import('./coverage.js')).runCoverageCommand(argv),
  },
  query: {
    summary: 'run a named capacity-planning query (capacity/<name>) as a table, CSV or JSON',
    run: async (argv) => (await import('./query.js')).runQueryCommand(argv),
  },
  sql: {
    summary: 'run read-only SQL over the analytics database (checked and limited)',
    run: async (argv) => (await import('./sql.js')).runSqlCommand(argv),
  },
  dataset: {
    summary: 'export a training dataset as Parquet or CSV, with its data card',
    run: async (argv) => (await import('./dataset.js')).runDatasetCommand(argv),
  },
  import: {
    summary: 'backfill NDJSON or CSV samples from a file through the same validated path',
    run: async (argv) => (await import('./import.js')).runImportCommand(argv),
  },
  'dead-letters': {
    summary: 'list, inspect and replay batch jobs that ran out of attempts',
    run: async (argv) => (await import('./dead-letters.js')).runDeadLettersCommand(argv),
  },
  quarantine: {
    summary: 'list, inspect, replay or discard rows the engine refused (the rest of their batch is billed)',
    run: async (argv) => (await import('./quarantine.js')).runQuarantineCommand(argv),
  },
  'privacy-scan': {
    summary: 'scan analytics tables and dataset exports for identifiers; exit 1 on any',
    run: async (argv) => (await import('./privacy-scan.js')).runPrivacyScanCommand(argv),
  },
  migrate: {
    summary: 'apply the ClickHouse migrations and exit',
    run: async (argv) => (await import('./migrate.js')).runMigrateCommand(argv),
  },
};

export function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length));
  return [
    'usage-meter: exact usage metering and anonymized fleet analytics',
    '',
    'Usage: usage-meter <command> [options]     (npm run cli -- <command> …)',
    '',
    'Commands:',
    ...Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Run `usage-meter <command> --help` for a command\'s options.',
  ].join('\n');
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage());
    return 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return (await command.run(rest)) ?? 0;
  } catch (err) {
    if (err instanceof ConfigError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      console.error(`usage-meter ${name}: ${(err as Error).message}`);
      return 2;
    }
    console.error(`usage-meter ${name} failed: ${(err as Error).message}`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
