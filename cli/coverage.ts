/**
 * `usage-meter coverage --account A [--period YYYY-MM]`: what GET
 * /v1/accounts/:account/coverage answers, per metric: seconds covered, and of those how
 * many were measured and how many held across a collector's missed scrapes (samples marked
 * `estimated: "held"`), against each resource's span; open gap hours.
 */
import { parseArgs } from 'node:util';
import { parseAccountParam } from '../domain/accounts.js';
import { nextPeriod, parsePeriod, periodLabel } from '../domain/periods.js';
import { accountCoverage, type CoverageRow } from '../queries/coverage.js';
import { periodParamSchema } from '../queries/routes.js';
import { ConfigError } from '../schemas/config.js';
import { settingsHelp, takeSettingFlags } from './settings-flags.js';
import { STD_IO, TARGET_FLAGS, TARGET_OPTIONS, apiFetch, closeTarget, openTarget, printRows, reportCliErrors, targetHelp, write, type CliIo } from './query.js';

const HELP = `Usage: usage-meter coverage --account ID [--period YYYY-MM] [--format table|json] [options]

Per metric of one account in a billing period (default: this month): resources reporting
it, seconds covered by samples (covered_s), of those measured (measured_s) and held
(held_s: a gauge's reading held across a collector's missed scrapes, billed like measured
time but not observed), the span expected (expected_s), coverage and coverage_measured
(covered or measured / expected), and the hours inside the spans with gaps (gap_hours).

Options:
  --account ID          the account (required)
  --period YYYY-MM      the billing period (UTC month)
  --format F            table (default) or json
  -h, --help            this help

${targetHelp('billing')}

${settingsHelp()}`;

export async function runCoverageCommand(argv: string[], io: CliIo = STD_IO): Promise<number> {
  const { overrides, rest } = takeSettingFlags(argv, ['--account', '--period', '--format', '--help', ...TARGET_FLAGS]);
  const { values } = parseArgs({
    args: rest,
    allowPositionals: false,
    options: { account: { type: 'string' }, period: { type: 'string' }, format: { type: 'string' }, help: { type: 'boolean', short: 'h' }, ...TARGET_OPTIONS },
  });
  if (values.help) {
    write(io.stdout, HELP);
    return 0;
  }
  if (values.account === undefined) throw new ConfigError('--account ID is required');
  const account = parseAccountParam(values.account);
  if ('error' in account) throw new ConfigError(`--account: ${account.error}`);
  const period = periodParamSchema.safeParse(values.period ?? periodLabel(Date.now()));
  if (!period.success) throw new ConfigError(`--period: ${period.error.issues[0]!.message}`);
  const format = values.format ?? 'table';
  if (format !== 'table' && format !== 'json') throw new ConfigError(`--format must be table or json, not ${format}`);

  const target = openTarget(values, overrides);
  return reportCliErrors('coverage', io, async () => {
    try {
      let metrics: CoverageRow[];
      if (target.kind === 'http') {
        const res = await apiFetch(target, `/v1/accounts/${encodeURIComponent(account.account)}/coverage?period=${period.data}`);
        metrics = ((await res.json()) as { metrics: CoverageRow[] }).metrics;
      } else {
        const start = parsePeriod(period.data)!;
        metrics = await accountCoverage(target.ch, account.account, start, nextPeriod(start));
      }
      if (format === 'json') write(io.stdout, JSON.stringify({ account: account.account, period: period.data, metrics }, null, 2));
      else printRows(io, metrics as unknown as Record<string, unknown>[], 'table');
      return 0;
    } finally {
      await closeTarget(target);
    }
  });
}
