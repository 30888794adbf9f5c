/**
 * Rebuilds the derived trace profile shipped in sim/traces/ from the original 300-second
 * series (not in the repository: see README.md here for where they come from).
 *
 *   npx tsx sim/traces/derive.ts SOURCE_DIR            # write the profile into sim/traces/
 *   npx tsx sim/traces/derive.ts SOURCE_DIR --check    # compare with the shipped file; exit 1 if it differs
 *   npx tsx sim/traces/derive.ts SOURCE_DIR --out DIR  # write it elsewhere
 *
 * SOURCE_DIR holds azure2019_vm_fleet_month_300s.csv (and, for the report on why no
 * bandwidth profile is shipped, alibaba2018_machine_usage_days_1_to_8_300s.csv). The
 * derivation itself is sim/traces.ts's deriveCpuWeek, the same code the simulator runs
 * when pointed at the original series, so the two cannot drift apart.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { deriveCpuWeek, formatCpuProfile, readCsv, PROFILE_FILES, TRACE_FILES } from '../traces.js';

export const SHIPPED_DIR = fileURLToPath(new URL('./', import.meta.url));

/** True when the original Azure series is in `sourceDir`. */
export function hasOriginals(sourceDir: string | undefined): sourceDir is string {
  return !!sourceDir && existsSync(join(sourceDir, TRACE_FILES.azure));
}

/** The shipped profile files' contents, by file name, derived from the originals in `sourceDir`. */
export function deriveProfiles(sourceDir: string): Record<string, string> {
  const azurePath = join(sourceDir, TRACE_FILES.azure);
  const azure = readCsv(azurePath, ['cpu_usage']);
  if (!azure) throw new Error(`${azurePath} does not exist`);
  return { [PROFILE_FILES.cpu]: formatCpuProfile(deriveCpuWeek(azure.cpu_usage!, azurePath)) };
}

/**
 * Why no bandwidth profile is shipped, in numbers: the Alibaba fleet series' growth per
 * day (least-squares line) and the spread of its hour-of-day means once that line is
 * divided out. Returns undefined when the series is not in `sourceDir`.
 */
export function alibabaNetReport(sourceDir: string): string | undefined {
  const path = join(sourceDir, TRACE_FILES.alibaba);
  const series = readCsv(path, ['net_in', 'net_out']);
  if (!series) return undefined;
  return (['net_in', 'net_out'] as const).map((col) => {
    const x = series[col]!;
    const n = x.length;
    let sx = 0, sy = 0, sxx = 0, sxy = 0;
    x.forEach((v, i) => { sx += i; sy += v; sxx += i * i; sxy += i * v; });
    const slope = (n * sxy - sx * sy) / (n * sxx - sx * sx);
    const icept = (sy - slope * sx) / n;
    const sums = new Array<number>(24).fill(0);
    const counts = new Array<number>(24).fill(0);
    x.forEach((v, i) => { const h = Math.floor(i / 12) % 24; sums[h]! += v / (icept + slope * i); counts[h]! += 1; });
    const hourly = sums.map((s, h) => s / counts[h]!);
    const m = hourly.reduce((a, b) => a + b, 0) / 24;
    const spread = (Math.max(...hourly) - Math.min(...hourly)) / m;
    return `alibaba2018 ${col}: grows ${((slope * 288 * 100) / (sy / n)).toFixed(1)} % of its mean per day; ` +
      `detrended hour-of-day means span ${(spread * 100).toFixed(2)} % (no daily pattern worth shipping)`;
  }).join('\n');
}

function main(argv: string[]): number {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { out: { type: 'string' }, check: { type: 'boolean', default: false }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help || positionals.length !== 1) {
    process.stderr.write('usage: npx tsx sim/traces/derive.ts SOURCE_DIR [--check | --out DIR]\n');
    return values.help ? 0 : 2;
  }
  const sourceDir = resolve(positionals[0]!);
  const outDir = resolve(values.out ?? SHIPPED_DIR);
  let differing = 0;
  for (const [name, text] of Object.entries(deriveProfiles(sourceDir))) {
    const path = join(outDir, name);
    if (values.check) {
      const same = existsSync(path) && readFileSync(path, 'utf8') === text;
      if (!same) differing++;
      process.stdout.write(`${same ? 'same   ' : 'DIFFERS'} ${path}\n`);
    } else {
      writeFileSync(path, text);
      process.stdout.write(`wrote ${path} (${text.length} bytes)\n`);
    }
  }
  const report = alibabaNetReport(sourceDir);
  if (report) process.stdout.write(`${report}\n`);
  return differing === 0 ? 0 : 1;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = main(process.argv.slice(2));
}
