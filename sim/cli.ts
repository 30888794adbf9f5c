/**
 * `usage-meter simulate`: generate a deterministic fleet's samples and write them as
 * NDJSON, or POST them to a running pipeline. Progress and the summary go to stderr, so
 * stdout stays clean NDJSON when piped.
 */
import { createWriteStream } from 'node:fs';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import cliProgress from 'cli-progress';
import { LIMITS } from '../schemas/sample.js';
import { parseTimeBound, toIso } from '../lib/time.js';
import { createFleet } from './fleet.js';
import { countExpected, generateSamples, type SampleBatch } from './samples.js';
import { describeTraces, loadTraces } from './traces.js';
import { postBatches, type PostSummary } from './post.js';

export { postBatches } from './post.js';
export type { PostOptions, PostSummary, BatchResult } from './post.js';

const HELP = `Usage: usage-meter simulate [options]

Generate a simulated fleet's usage samples (wire format v1), deterministic for a seed.
Writes NDJSON (default: stdout), or POSTs batches to {url}/v1/samples.

Fleet and time span:
  --accounts N          accounts (default 100; sizes are skewed: a few big, many small)
  --resources N         resources of all six types (default 1000)
  --hours H             hours simulated (default 24)
  --step S              window length interval_s in seconds, 1-3600 (default 60)
  --start TIME          first window start, RFC 3339 (default: --hours ending at the last full hour)
  --seed N              seed for the fleet and the samples (default 1)
  --traces DIR          directory of the fleet traces (default: sim/traces/ in the repo; the
                        original series work too; a synthetic shape is used, with a
                        warning, when the files are missing)

Injected faults (shares of samples):
  --duplicate-rate R    re-sent samples, exact or under a new id (default 0.001)
  --invalid-rate R      invalid items mixed in (default 0.0005)
  --conflict-rate R     same-key samples with a different value (default 0)

Output:
  --out FILE|-          NDJSON to FILE, or - for stdout (default -)
  --url URL             POST to URL/v1/samples instead, e.g. http://localhost:8080
  --key SECRET          producer API key for --url (sent as a Bearer token)
  --batch-size N        samples per batch / request (default 1000)
  --concurrency N       requests in flight with --url (default 4)
  --quiet               no progress bar
  -h, --help            this help

Exit status: 0 on success; 1 if a batch could not be delivered or the server's answers
disagreed with the injected faults; 2 on bad options.`;

export interface SimulateIo {
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

/** Runs the command; returns the exit status (never calls process.exit). */
export async function runSimulateCommand(
  argv: string[],
  io: SimulateIo = { stdout: process.stdout, stderr: process.stderr },
): Promise<number> {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      accounts: { type: 'string', default: '100' },
      resources: { type: 'string', default: '1000' },
      hours: { type: 'string', default: '24' },
      step: { type: 'string', default: '60' },
      start: { type: 'string' },
      seed: { type: 'string', default: '1' },
      traces: { type: 'string' },
      'duplicate-rate': { type: 'string', default: '0.001' },
      'invalid-rate': { type: 'string', default: '0.0005' },
      'conflict-rate': { type: 'string', default: '0' },
      out: { type: 'string', default: '-' },
      url: { type: 'string' },
      key: { type: 'string' },
      'batch-size': { type: 'string', default: '1000' },
      concurrency: { type: 'string', default: '4' },
      quiet: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) {
    io.stdout.write(`${HELP}\n`);
    return 0;
  }
  const usageError = (msg: string) => {
    io.stderr.write(`usage-meter simulate: ${msg}\nRun \`usage-meter simulate --help\` for the options.\n`);
    return 2;
  };

  let opts: ReturnType<typeof parseOptions>;
  try {
    opts = parseOptions(v);
  } catch (err) {
    return usageError((err as Error).message);
  }
  if (v.url !== undefined && !v.key) return usageError('--url needs --key (a producer API key)');
  if (v.url !== undefined && v.out !== '-') return usageError('use either --url or --out, not both');

  const fleet = createFleet({ accounts: opts.accounts, resources: opts.resources, seed: opts.seed });
  const traces = loadTraces({ dataDir: v.traces, warn: (m) => io.stderr.write(`warning: ${m}\n`) });
  const expected = countExpected(fleet, { hours: opts.hours, stepS: opts.step });
  const endMs = opts.startMs + expected.steps * opts.step * 1000;
  io.stderr.write(
    `simulating ${fleet.accounts.length} accounts, ${fleet.resources.length} resources, ` +
      `${toIso(opts.startMs)} → ${toIso(endMs)} every ${opts.step}s: ${expected.samples} samples ` +
      `(fleet shaped by: ${describeTraces(traces)})\n`,
  );
  if (endMs > Date.now() + LIMITS.maxFutureMs) {
    io.stderr.write('warning: windows ending more than 5 minutes from now will be rejected by ingest\n');
  }

  const batches = generateSamples(fleet, {
    start: opts.startMs, hours: opts.hours, stepS: opts.step, seed: opts.seed, batchSize: opts.batchSize,
    duplicateRate: opts.duplicateRate, invalidRate: opts.invalidRate, conflictRate: opts.conflictRate, traces,
  });
  const bar = new cliProgress.SingleBar(
    { stream: io.stderr, format: '{bar} {percentage}% | {value}/{total} samples | {eta_formatted} left', hideCursor: null },
    cliProgress.Presets.shades_classic,
  );
  if (!v.quiet) bar.start(expected.samples, 0);
  const progress = (b: SampleBatch) => {
    if (!v.quiet) bar.increment(b.valid - b.duplicates);
  };

  try {
    if (v.url !== undefined) {
      const summary = await postBatches(v.url, v.key as string, batches, {
        concurrency: opts.concurrency,
        onBatch: (_r, b) => progress(b),
      });
      bar.stop();
      io.stderr.write(formatPostSummary(summary));
      const ok = !summary.stopped && summary.failed.length === 0 &&
        summary.unexpectedRejections === 0 && summary.unexpectedAcceptances === 0;
      return ok ? 0 : 1;
    }
    const written = await writeNdjson(v.out, batches, io.stdout, progress);
    bar.stop();
    io.stderr.write(
      `wrote ${written.items} items to ${v.out === '-' ? 'stdout' : v.out}: ${written.valid - written.duplicates} distinct samples, ` +
        `${written.duplicates} duplicates and ${written.invalid} invalid items injected\n`,
    );
    return 0;
  } finally {
    bar.stop();
  }
}

function parseOptions(v: Record<string, string | boolean | undefined>) {
  const int = (name: string, lo: number, hi: number) => {
    const raw = String(v[name]);
    const n = Number(raw);
    if (!/^\d+$/.test(raw) || n < lo || n > hi) throw new Error(`--${name} must be a whole number from ${lo} to ${hi}`);
    return n;
  };
  const share = (name: string) => {
    const n = Number(v[name]);
    if (!(n >= 0 && n <= 1)) throw new Error(`--${name} must be a number from 0 to 1`);
    return n;
  };
  const hours = Number(v.hours);
  if (!(hours > 0 && hours <= 24 * 366)) throw new Error('--hours must be a positive number of hours (at most a year)');
  let startMs: number;
  if (v.start !== undefined) {
    const parsed = parseTimeBound(String(v.start));
    if (parsed === undefined) throw new Error('--start must be RFC 3339 with a time zone, e.g. 2026-11-28T00:00:00Z');
    startMs = parsed;
  } else {
    const lastFullHour = Math.floor(Date.now() / 3_600_000) * 3_600_000;
    startMs = lastFullHour - Math.round(hours * 3_600_000);
  }
  return {
    accounts: int('accounts', 1, 1_000_000),
    resources: int('resources', 1, 10_000_000),
    hours,
    step: int('step', 1, LIMITS.maxIntervalS),
    startMs,
    seed: int('seed', 0, 2 ** 32 - 1),
    batchSize: int('batch-size', 1, 100_000),
    concurrency: int('concurrency', 1, 256),
    duplicateRate: share('duplicate-rate'),
    invalidRate: share('invalid-rate'),
    conflictRate: share('conflict-rate'),
  };
}

/** Writes batches as NDJSON, waiting for 'drain' so a slow reader bounds memory. */
async function writeNdjson(
  out: string | undefined,
  batches: Iterable<SampleBatch>,
  stdout: NodeJS.WritableStream,
  onBatch: (b: SampleBatch) => void,
): Promise<{ items: number; valid: number; duplicates: number; invalid: number }> {
  const toFile = out !== undefined && out !== '-';
  const stream: NodeJS.WritableStream = toFile ? createWriteStream(out) : stdout;
  const totals = { items: 0, valid: 0, duplicates: 0, invalid: 0 };
  let failed: Error | undefined;
  const onError = (err: Error) => {
    failed = err;
  };
  stream.on('error', onError);
  try {
    for (const b of batches) {
      if (failed) break;
      const chunk = `${b.items.map((i) => JSON.stringify(i)).join('\n')}\n`;
      if (!stream.write(chunk)) await drainOrError(stream);
      totals.items += b.items.length;
      totals.valid += b.valid;
      totals.duplicates += b.duplicates;
      totals.invalid += b.invalid;
      onBatch(b);
    }
    if (toFile) {
      stream.end();
      await once(stream, 'finish');
    }
  } finally {
    stream.off('error', onError);
  }
  // A reader that went away (`| head`) is not a failure of the simulator.
  if (failed && (failed as NodeJS.ErrnoException).code !== 'EPIPE') throw failed;
  return totals;
}

/** Resolves on 'drain' or 'error' (the error itself is recorded by the caller's listener). */
function drainOrError(stream: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      stream.off('drain', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('error', done);
  });
}

function formatPostSummary(s: PostSummary): string {
  const lines = [
    `sent ${s.sent} items in ${s.batches} batches in ${(s.elapsedMs / 1000).toFixed(1)}s ` +
      `(${Math.round(s.sent / Math.max(0.001, s.elapsedMs / 1000))}/s), ${s.retries} retries`,
    `accepted ${s.accepted}, rejected ${s.rejected}; injected ${s.invalidInjected} invalid, ${s.duplicatesInjected} duplicates`,
  ];
  if (s.unexpectedRejections > 0) lines.push(`UNEXPECTED: ${s.unexpectedRejections} valid samples were rejected`);
  if (s.unexpectedAcceptances > 0) lines.push(`UNEXPECTED: ${s.unexpectedAcceptances} invalid items were accepted`);
  for (const e of s.sampleErrors) lines.push(`  e.g. ${e}`);
  for (const f of s.failed.slice(0, 5)) lines.push(`FAILED batch ${f.index} (status ${f.status}): ${f.reason}`);
  if (s.stopped) lines.push('STOPPED early: not every batch was sent');
  if (s.failed.length > 5) lines.push(`… and ${s.failed.length - 5} more failed batches`);
  return `${lines.join('\n')}\n`;
}
