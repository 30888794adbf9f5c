/**
 * Re-renders a results file's verdicts and Markdown with the current analysis
 * (bench/lib/report.ts), from the figures the run measured: for a target added after the
 * run. Nothing is measured again; the run's own command and times are kept.
 *
 *   node --import tsx bench/rerender.ts bench/results/<run>.json   (writes <run>.md beside it)
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { analyse, markdown, type BenchResults } from './lib/report.js';

const file = process.argv[2];
if (!file || file === '--help' || file === '-h') {
  console.log('Usage: node --import tsx bench/rerender.ts <results.json>');
  process.exit(file ? 0 : 2);
}
const results = JSON.parse(readFileSync(file, 'utf8')) as BenchResults;
const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
// Said in the report, so a reader knows the verdicts are newer than the run.
results.notes = [...results.notes.filter((n) => !n.startsWith('Verdicts re-rendered')), `Verdicts re-rendered at ${head} (bench/rerender.ts) from this run's measured figures; nothing was measured again.`];
const { targets, bottlenecks } = analyse(results);
results.targets = targets;
results.bottlenecks = bottlenecks;
const base = path.basename(file, '.json');
writeFileSync(file, JSON.stringify(results, null, 2) + '\n');
writeFileSync(path.join(path.dirname(file), `${base}.md`), `${markdown(results)}\nFull results: [${base}.json](${base}.json)\n`);
console.log(`re-rendered ${base}.md`);
