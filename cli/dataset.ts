/**
 * `usage-meter dataset <name> --out FILE`: a training dataset as Parquet or CSV, with its
 * data card beside it (FILE.card.json), streamed to disk with a progress bar. The file
 * appears under its name only when complete (written as FILE.partial, then renamed).
 */
import { createWriteStream } from 'node:fs';
import { rename, rm, writeFile } from 'node:fs/promises';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { parseArgs } from 'node:util';
import { DATASET_FORMATS, datasetCard, datasets, datasetStream, findDataset, resolveDatasetParams, type DataCard, type DatasetFormat } from '../queries/datasets/datasets.js';
import { ConfigError, loadConfig } from '../schemas/config.js';
import { settingsHelp, takeSettingFlags } from './settings-flags.js';
import { headerGetter, shapeHeaders } from '../queries/shaped-by/headers.js';
import { STD_IO, TARGET_FLAGS, TARGET_OPTIONS, apiFetch, closeTarget, openTarget, parseParamFlags, printShapeFooter, progressBar, reportCliErrors, targetHelp, write, type CliIo } from './query.js';

const HELP = `Usage: usage-meter dataset <name> --out FILE [--format parquet|csv] [--from T] [--to T]
                             [--validation-from T] [--split all|train|validation] [options]
       usage-meter dataset --list

Exports a training dataset built from anonymized analytics only, as Parquet or CSV, and
its data card (schema with units, time range, split, k, generalized and suppressed counts,
schema version) as FILE.card.json.

Options:
  --out FILE              where to write (required); the format follows the extension
                          (.csv, otherwise Parquet) unless --format says otherwise
  --format F              parquet or csv
  --from T, --to T        the hours to export, [from, to): RFC 3339, YYYY-MM-DD, epoch ms,
                          or now / now-30d (defaults: the dataset's)
  --validation-from T     first hour of the validation split: earlier hours are train
  --split S               all (default), train or validation
  --param name=value      any other parameter of the dataset (repeatable)
  --no-card               do not write FILE.card.json
  --quiet                 no progress bar
  --list                  list the datasets and their columns
  -h, --help              this help

${targetHelp('datascience')}

${settingsHelp()}`;

export async function runDatasetCommand(argv: string[], io: CliIo = STD_IO): Promise<number> {
  const { overrides, rest } = takeSettingFlags(argv, [
    '--out', '--format', '--from', '--to', '--validation-from', '--split', '--param', '--no-card', '--quiet', '--list', '--help', ...TARGET_FLAGS,
  ]);
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      out: { type: 'string' },
      format: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      'validation-from': { type: 'string' },
      split: { type: 'string' },
      param: { type: 'string', multiple: true },
      'no-card': { type: 'boolean' },
      quiet: { type: 'boolean' },
      list: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      ...TARGET_OPTIONS,
    },
  });
  if (values.help) {
    write(io.stdout, HELP);
    return 0;
  }
  if (values.list) {
    for (const d of datasets()) {
      write(io.stdout, `${d.name} (schema v${d.schemaVersion}): ${d.title}`);
      for (const c of d.columns) write(io.stdout, `    ${c.name.padEnd(22)} ${c.unit.padEnd(12)} ${c.description}`);
    }
    return 0;
  }
  if (positionals.length !== 1) throw new ConfigError('name one dataset (usage-meter dataset --list); see --help');
  const ds = findDataset(positionals[0]!);
  if (!ds) throw new ConfigError(`no dataset ${positionals[0]}; usage-meter dataset --list`);
  if (!values.out) throw new ConfigError('--out FILE is required');
  const out = values.out;
  const format = (values.format ?? (out.toLowerCase().endsWith('.csv') ? 'csv' : 'parquet')) as DatasetFormat;
  if (!(format in DATASET_FORMATS)) throw new ConfigError(`--format must be parquet or csv, not ${format}`);
  const raw: Record<string, string> = { ...parseParamFlags(values.param) };
  if (values.from) raw.from = values.from;
  if (values.to) raw.to = values.to;
  if (values['validation-from']) raw.validation_from = values['validation-from'];
  if (values.split) raw.split = values.split;

  const target = openTarget(values, overrides);
  const partial = `${out}.partial`;
  return reportCliErrors('dataset', io, async () => {
    try {
      let card: DataCard;
      let body: Readable;
      if (target.kind === 'http') {
        const query = new URLSearchParams(raw).toString();
        card = (await (await apiFetch(target, `/v1/analytics/datasets/${encodeURIComponent(ds.name)}/card?${query}`)).json()) as DataCard;
        const res = await apiFetch(target, `/v1/analytics/datasets/${encodeURIComponent(ds.name)}?${query}&format=${format}`);
        body = Readable.fromWeb(res.body as WebReadableStream<Uint8Array>);
      } else {
        const params = resolveDatasetParams(ds, raw);
        if ('error' in params) throw new ConfigError(`${ds.name}: ${params.error}`);
        const k = loadConfig(process.env, overrides).K_ANONYMITY;
        card = await datasetCard(target.ch, ds, params, { k });
        body = await datasetStream(target.ch, ds, params, format);
      }

      // CSV: rows (one line each, after the header) against the card's count. Parquet is
      // binary: bytes written, the total is known only at the end.
      const bar = progressBar(io, values.quiet ?? false, format === 'csv' ? `${ds.name} [{bar}] {percentage}% | {value}/{total} rows | {eta_formatted}` : `${ds.name} | {bytes} written | {duration_formatted}`);
      bar.start(format === 'csv' ? Math.max(card.rows, 1) : 1, { bytes: '0 B' });
      let bytes = 0;
      let newlines = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _enc, done) {
          bytes += chunk.length;
          if (format === 'csv') {
            for (const b of chunk) if (b === 10) newlines++;
            bar.update(Math.max(0, newlines - 1));
          } else {
            bar.update(0, { bytes: formatBytes(bytes) });
          }
          done(null, chunk);
        },
      });
      try {
        await pipeline(body, meter, createWriteStream(partial));
        await rename(partial, out);
      } catch (err) {
        await rm(partial, { force: true });
        throw err;
      } finally {
        bar.stop();
      }
      if (!values['no-card']) await writeFile(`${out}.card.json`, JSON.stringify(card, null, 2) + '\n');
      write(io.stderr, `${ds.name}: ${card.rows} rows, ${card.series} series, ${formatBytes(bytes)} of ${format} → ${out}${values['no-card'] ? '' : ` (card: ${out}.card.json)`}`);
      // What shaped the file: k, suppression in its hours, and why it may be empty.
      if (card.shaped_by) printShapeFooter(io, headerGetter(shapeHeaders(card.shaped_by, card.warnings ?? [])), card.warnings);
      return 0;
    } finally {
      await closeTarget(target);
    }
  });
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}
