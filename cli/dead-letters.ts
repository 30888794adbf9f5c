/**
 * `usage-meter dead-letters`: list, inspect and replay batch jobs that ran out of attempts
 * (workers/dead-letters.ts). Talks to Redis only, so it runs beside a live pipeline.
 */
import { loadConfig } from '../schemas/config.js';
import { openQueueTools } from './redis-for-cli.js';
import type { BatchJob } from '../schemas/queues.js';
import { decodeRawRow, RAW_ROW_FORMAT } from '../schemas/raw-row.js';
import {
  countDeadLetters,
  inspectDeadLetter,
  listDeadLetters,
  replayAllDeadLetters,
  replayDeadLetter,
  DeadLetterNotFoundError,
  type DeadLetterSummary,
  type ReplayResult,
} from '../workers/dead-letters.js';
import { parseActionArgs, settingsHelp } from './settings-flags.js';
import { printTable } from './table.js';

const HELP = `Usage: usage-meter dead-letters <list | show <id> | replay <id> | replay --all | count> [options] [settings]

Batch jobs that spent all their attempts (JOB_ATTEMPTS, with exponential backoff), or whose
payload can never be valid, stay in the queue's failed set with their data and the reason
they failed: the dead letters. Their samples are acknowledged but not billed yet, so the
usage API reports the hours they touch as incomplete until they are replayed.

  list [--limit N] [--offset N]  dead letters, newest first: id, when, attempts, rows, reason
  show <id> [--rows]             one dead letter: reason, each attempt's error, replay history,
                                 and its batch (--rows prints the raw rows as NDJSON)
  replay <id>                    put it back on the queue with the same payload and fresh
                                 attempts; safe to repeat (inserts are idempotent)
  replay --all                   replay every dead letter present when the command starts
  count                          how many dead letters there are
  --json                         machine-readable output (list, show, replay)

Fix the cause first (e.g. ClickHouse unreachable or rejecting the rows), then replay. A job
that fails again lands back in the dead letters with its new reason; nothing is dropped.

Exit status: 0 done, 1 a replay or lookup failed, 2 bad usage.

${settingsHelp()}`;

const OPTIONS = {
  all: { type: 'boolean' },
  rows: { type: 'boolean' },
  json: { type: 'boolean' },
  limit: { type: 'string' },
  offset: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export async function runDeadLettersCommand(argv: string[]): Promise<number> {
  const { overrides, values, action, args, help } = parseActionArgs(argv, OPTIONS);
  if (help || !action) {
    console.log(HELP);
    return values.help ? 0 : 2;
  }
  const usageError = checkUsage(action, args, values);
  if (usageError) {
    console.error(`usage-meter dead-letters: ${usageError}; see --help`);
    return 2;
  }
  const config = loadConfig(process.env, overrides);
  const tools = await openQueueTools(config);
  const { queue } = tools;
  try {
    switch (action) {
      case 'count':
        console.log(String(await countDeadLetters(queue)));
        return 0;
      case 'list': {
        const offset = Number(values.offset ?? 0);
        const limit = Number(values.limit ?? 50);
        const [total, letters] = await Promise.all([countDeadLetters(queue), listDeadLetters(queue, { offset, limit })]);
        if (values.json) {
          console.log(JSON.stringify({ total, offset, dead_letters: letters }));
          return 0;
        }
        console.log(`${total} dead-lettered batch job(s)${total > letters.length ? `; showing ${letters.length} from ${offset}` : ''}`);
        if (letters.length > 0) printTable(letters.map(row));
        return 0;
      }
      case 'show': {
        const id = args[0]!;
        const letter = await inspectDeadLetter(queue, id);
        if (!letter) {
          console.error(`usage-meter dead-letters: no dead-lettered batch job with id ${id}`);
          return 1;
        }
        if (values.json) {
          console.log(JSON.stringify(letter));
          return 0;
        }
        const { data, ...meta } = letter;
        console.log(`dead letter ${letter.id}`);
        console.log(`  reason:      ${letter.reason}`);
        console.log(`  attempts:    ${letter.attemptsMade} of ${letter.maxAttempts}`);
        console.log(`  accepted:    ${iso(letter.createdAt)}`);
        console.log(`  failed:      ${iso(letter.failedAt)}`);
        if (letter.batch) {
          const b = letter.batch;
          console.log(`  batch:       seq ${b.batchSeq}, ${b.rowCount} row(s), ${b.accounts} account(s), hours ${b.hours.map((h) => iso(h * 1000)).join(', ')}`);
        } else {
          console.log(`  payload:     does not match the batch job schema (a replay fails again):`);
          for (const e of meta.payloadErrors) console.log(`    - ${e}`);
        }
        if (meta.stacktrace.length) {
          console.log('  errors (oldest first):');
          for (const s of meta.stacktrace) console.log(`    - ${s.split('\n')[0]}`);
        }
        if (meta.logs.length) {
          console.log('  history:');
          for (const l of meta.logs) console.log(`    - ${l}`);
        }
        if (values.rows) {
          const rows = letter.batch ? readableRows(data as BatchJob) : JSON.stringify(data) + '\n';
          process.stdout.write(rows);
        }
        return 0;
      }
      case 'replay': {
        const results = values.all ? await replayAllDeadLetters(queue) : await replayOne(queue, args[0]!);
        const replayed = results.filter((r) => r.replayed).length;
        if (values.json) console.log(JSON.stringify({ replayed, results }));
        else {
          for (const r of results) console.log(r.replayed ? `replayed ${r.id}` : `not replayed ${r.id}: ${r.skipped}`);
          console.log(`${replayed} of ${results.length} dead letter(s) replayed`);
        }
        return replayed === results.length ? 0 : 1;
      }
      default:
        return 2; // unreachable: checkUsage accepted the action
    }
  } finally {
    await tools.close();
  }
}

function checkUsage(action: string, args: string[], values: { all?: boolean | undefined; limit?: string | undefined; offset?: string | undefined }): string | undefined {
  const whole = (v: string | undefined) => v === undefined || /^\d+$/.test(v);
  switch (action) {
    case 'list':
      if (args.length) return `list takes no argument (got ${args[0]})`;
      if (!whole(values.limit) || !whole(values.offset) || values.limit === '0') return '--limit and --offset take whole numbers (limit ≥ 1)';
      return undefined;
    case 'count':
      return args.length ? `count takes no argument (got ${args[0]})` : undefined;
    case 'show':
      return args.length === 1 ? undefined : 'show needs exactly one job id';
    case 'replay':
      if (values.all) return args.length ? 'replay takes a job id or --all, not both' : undefined;
      return args.length === 1 ? undefined : 'replay needs one job id, or --all';
    default:
      return `unknown action "${action}" (list, show, replay, count)`;
  }
}

async function replayOne(queue: Parameters<typeof replayDeadLetter>[0], id: string): Promise<ReplayResult[]> {
  try {
    await replayDeadLetter(queue, id);
    return [{ id, replayed: true }];
  } catch (err) {
    if (err instanceof DeadLetterNotFoundError) return [{ id, replayed: false, skipped: err.message }];
    throw err;
  }
}

function row(l: DeadLetterSummary): Record<string, string | number> {
  return {
    id: l.id,
    failed_at: iso(l.failedAt),
    attempts: `${l.attemptsMade}/${l.maxAttempts}`,
    rows: l.batch ? l.batch.rowCount : '-',
    accounts: l.batch ? l.batch.accounts : '-',
    reason: l.reason.length > 100 ? `${l.reason.slice(0, 99)}…` : l.reason,
  };
}

function iso(ms: number | undefined): string {
  return ms === undefined ? '-' : new Date(ms).toISOString();
}


/** A batch's rows as one JSON object per line, whatever encoding the job carries. */
function readableRows(batch: BatchJob): string {
  if (batch.rowFormat !== RAW_ROW_FORMAT) return batch.rows;
  return batch.rows.trim().split('\n').map((l) => JSON.stringify(decodeRawRow(l))).join('\n') + '\n';
}
