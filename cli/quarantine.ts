/**
 * `usage-meter quarantine`: rows the engine refused for good, apart from their written
 * batch (lib/quarantine.ts). List, inspect, replay through today's validation, or discard.
 * Talks to Redis only, so it runs beside a live pipeline (replay queues a new batch job
 * for the running workers).
 */
import { acceptorFromConfig } from '../ingest/accept.js';
import { QuarantineNotFoundError, replayQuarantined, sampleOfRow } from '../ingest/quarantine-replay.js';
import { getQuarantine, listQuarantine, quarantineStats, removeQuarantine, type QuarantineMeta } from '../domain/quarantine.js';
import { loadConfig } from '../schemas/config.js';
import { openQueueTools } from './redis-for-cli.js';
import { parseActionArgs, settingsHelp } from './settings-flags.js';
import { printTable } from './table.js';

const HELP = `Usage: usage-meter quarantine <list | show <id> | replay <id> | discard <id>> [options] [settings]

Rows of an acknowledged batch that the engine refused for what they hold (a parse or type
error, not an outage) wait here; the rest of their batch is written. Only the accounts of
these rows see their usage reported incomplete, with the quarantine id as the reason. A
billing period closes without waiting for them: replayed after the close, they are billed
as adjustments in the first open period, like any late sample.

  list [--limit N] [--offset N]  entries, oldest first: id, when, rows, accounts, reason
  show <id>                      one entry and its rows as samples (NDJSON with --json)
  replay <id>                    send its rows through today's validation as a new batch;
                                 rows refused again stay here with their new reason
  discard <id>                   drop the entry: its rows will never be billed
  --json                         machine-readable output

At most QUARANTINE_MAX_ROWS rows are held; beyond that a refused batch stays a retried job
(later a dead letter) until entries are replayed or discarded.

Exit status: 0 done, 1 not found or a row refused again, 2 bad usage.

${settingsHelp()}`;

const OPTIONS = {
  json: { type: 'boolean' },
  limit: { type: 'string' },
  offset: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function runQuarantineCommand(argv: string[]): Promise<number> {
  const { overrides, values, action, args, help } = parseActionArgs(argv, OPTIONS);
  if (help || !action) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const whole = (v: string | undefined) => v === undefined || /^\d+$/.test(v);
  const usageError =
    action === 'list'
      ? args.length
        ? `list takes no argument (got ${args[0]})`
        : !whole(values.limit) || !whole(values.offset) || values.limit === '0'
          ? '--limit and --offset take whole numbers (limit ≥ 1)'
          : undefined
      : ['show', 'replay', 'discard'].includes(action)
        ? args.length === 1
          ? undefined
          : `${action} needs exactly one quarantine id`
        : `unknown action "${action}" (list, show, replay, discard)`;
  if (usageError) {
    console.error(`usage-meter quarantine: ${usageError}; see --help`);
    return 2;
  }

  const config = loadConfig(process.env, overrides);
  const tools = await openQueueTools(config);
  const { log, redis, keys, queue } = tools;
  const id = args[0]!;
  try {
    switch (action) {
      case 'list': {
        const offset = Number(values.offset ?? 0);
        const [stats, entries] = await Promise.all([quarantineStats(redis.client, keys), listQuarantine(redis.client, keys, { offset, limit: Number(values.limit ?? 50) })]);
        if (values.json) {
          console.log(JSON.stringify({ total_entries: stats.entries, total_rows: stats.rows, offset, entries }));
          return 0;
        }
        console.log(`${stats.rows} quarantined row(s) in ${stats.entries} entr${stats.entries === 1 ? 'y' : 'ies'} (at most ${config.QUARANTINE_MAX_ROWS} rows)`);
        if (entries.length > 0) printTable(entries.map(row));
        return 0;
      }
      case 'show': {
        const entry = await getQuarantine(redis.client, keys, id);
        if (!entry) return notFound(id);
        const samples = entry.rows.split('\n').filter(Boolean).map((line) => sampleOfRow(entry, line));
        if (values.json) {
          for (const s of samples) console.log(JSON.stringify(s));
          return 0;
        }
        console.log(`quarantine ${entry.id}`);
        console.log(`  reason:      ${entry.reason}`);
        console.log(`  accepted:    ${new Date(entry.acceptedAtMs).toISOString()} (batch seq ${entry.batchSeq})`);
        console.log(`  quarantined: ${new Date(entry.firstSeenMs).toISOString()}`);
        for (const [account, hours] of Object.entries(entry.accounts)) {
          console.log(`  account:     ${account}, hours ${hours.map((h) => new Date(h * 1000).toISOString()).join(', ')}`);
        }
        console.log(`  rows (${samples.length}):`);
        for (const s of samples) console.log(`    ${JSON.stringify(s)}`);
        return 0;
      }
      case 'replay': {
        const acceptor = acceptorFromConfig(config, { redis: redis.client, queue, keys });
        try {
          const outcome = await replayQuarantined(redis.client, keys, acceptor, id);
          if (values.json) console.log(JSON.stringify(outcome));
          else {
            console.log(`replayed ${outcome.accepted} row(s)${outcome.batch_id ? ` as batch ${outcome.batch_id}` : ''}; ${outcome.remaining} stay quarantined`);
            for (const r of outcome.rejected) console.log(`  row ${r.index}: ${r.errors.map((e) => `${e.path}: ${e.message}`).join('; ')}`);
          }
          return outcome.remaining === 0 ? 0 : 1;
        } catch (err) {
          if (err instanceof QuarantineNotFoundError) return notFound(id);
          throw err;
        }
      }
      case 'discard': {
        const entry = await getQuarantine(redis.client, keys, id);
        if (!entry || !(await removeQuarantine(redis.client, keys, id))) return notFound(id);
        log.warn({ quarantineId: id, rows: entry.rowCount }, 'quarantined rows discarded: they will never be billed');
        console.log(values.json ? JSON.stringify({ id, discarded: entry.rowCount }) : `discarded ${entry.rowCount} row(s) of ${id}; they will never be billed`);
        return 0;
      }
      default:
        return 2; // unreachable: the usage check accepted the action
    }
  } finally {
    await tools.close();
  }
}

function notFound(id: string): number {
  console.error(`usage-meter quarantine: nothing is quarantined under id ${id}`);
  return 1;
}

function row(e: QuarantineMeta): Record<string, string | number> {
  return {
    id: e.id,
    quarantined: new Date(e.firstSeenMs).toISOString(),
    rows: e.rowCount,
    accounts: Object.keys(e.accounts).join(' '),
    reason: e.reason.length > 80 ? `${e.reason.slice(0, 79)}…` : e.reason,
  };
}
