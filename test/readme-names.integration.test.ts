/**
 * The README names only what exists: every HTTP route it writes as `METHOD /path` is
 * registered by the real app (a full pipeline, asked over HTTP: an unregistered route gets
 * the not-found handler's `no route …` answer, a registered one anything else), and every
 * command, subcommand and option it names for `usage-meter`, `npm run …` or `npm start`
 * appears in that command's own `--help` (or package.json's scripts).
 *
 * A failure lists each offending README line by number and text, so whoever edits the
 * README can find it even after the numbers have moved.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestPipeline, type TestPipeline } from './support/pipeline.js';

const run = promisify(execFile);
const ROOT = new URL('..', import.meta.url).pathname;
const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8').split('\n');
const SCRIPTS = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { scripts: Record<string, string> }).scripts;

interface Problem {
  line: number;
  problem: string;
}
const report = (ps: Problem[]) => ps.map((p) => `README.md:${p.line}: ${p.problem}\n    ${README[p.line - 1]!.trim()}`).join('\n');

// --- routes -------------------------------------------------------------------------------

interface RouteMention {
  line: number;
  method: string;
  path: string;
}

function routeMentions(lines: readonly string[]): RouteMention[] {
  const out: RouteMention[] = [];
  lines.forEach((text, i) => {
    for (const m of text.matchAll(/\b(GET|POST|PUT|PATCH|DELETE) (\/[A-Za-z0-9_:/.{}-]*)/g)) {
      out.push({ line: i + 1, method: m[1]!, path: m[2]!.replace(/[.]+$/, '') });
    }
  });
  return out;
}

/** A concrete path for a route pattern: ids as UUIDs, other parameters as a plain word. */
function concrete(path: string): string {
  return path.replace(/:(\w+)/g, (_, name: string) => (name === 'id' ? '00000000-0000-4000-8000-000000000000' : 'readme-check'));
}

// --- command line -------------------------------------------------------------------------

interface CliMention {
  line: number;
  /** The usage-meter command whose --help must name the words and flags; undefined: `usage-meter --help`. */
  command?: string;
  /** A package.json script that must exist. */
  script?: string;
  /** Subcommands and option values (list, show, table, csv…). */
  words: string[];
  flags: string[];
}

const FLAG = /(?<![\w-])--[a-z][a-z0-9-]*/g;
/** Placeholders (`<name>`, `FILE`, `YYYY-MM`, `k=v`, `/srv/um`, numbers) are not names to check. */
const isWord = (w: string) => /^[a-z][a-z0-9-]*$/.test(w);
const alternatives = (token: string) => token.split(/\\?\|/).filter(isWord);

/** What follows a command up to the end of its code span: subcommand words and flags. */
function wordsAndFlags(rest: string): { words: string[]; flags: string[] } {
  const words: string[] = [];
  const flags: string[] = [];
  const tokens = rest.trim().split(/\s+/).filter(Boolean);
  tokens.forEach((t, i) => {
    if (/^--[a-z]/.test(t)) flags.push(t.replace(/[=].*$/, ''));
    // A bare word right after the command, or `a|b|c` anywhere (subcommands, a flag's values).
    else if (t.includes('|') || (i === 0 && isWord(t))) words.push(...alternatives(t));
  });
  return { words, flags };
}

/** The usage-meter command an npm script runs, if it runs one. */
function scriptCommand(script: string): string | undefined | null {
  const cmd = SCRIPTS[script];
  if (cmd === undefined) return null;
  const m = /^tsx cli\/main\.ts(?: ([a-z-]+))?$/.exec(cmd);
  return m ? (m[1] ?? '') : undefined;
}

function cliMentions(lines: readonly string[]): CliMention[] {
  const out: CliMention[] = [];
  // From the "Commands (" line to the first blank line after the table's rows.
  let table: 'before' | 'in' | 'rows' | 'after' = 'before';
  lines.forEach((text, i) => {
    const line = i + 1;
    if (/^Commands \(/.test(text)) table = 'in';
    else if (table === 'in' && text.startsWith('|')) table = 'rows';
    else if (table === 'rows' && !text.startsWith('|')) table = 'after';
    const inCommandsTable = table === 'rows';
    // The commands table: `command words…` | description with more `--flags` and `a|b` values.
    const row = inCommandsTable ? /^\| `([a-z][a-z-]*)([^`]*)` \|(.*)$/.exec(text) : null;
    if (row) {
      const first = wordsAndFlags(row[2]!);
      const valueLists = [...row[3]!.matchAll(/`(--[a-z-]+)(?: ([^`]+))?`/g)].flatMap((m) => (m[2] ? alternatives(m[2]) : []));
      out.push({ line, command: row[1]!, words: [...first.words, ...valueLists], flags: [...first.flags, ...(row[3]!.match(FLAG) ?? [])] });
      return;
    }
    // `usage-meter <command> …` anywhere.
    for (const m of text.matchAll(/usage-meter ([a-z][a-z-]*)([^`\n]*)/g)) {
      if (m[1] === 'command') continue;
      out.push({ line, command: m[1]!, ...wordsAndFlags(m[2]!.split(/[)#]/)[0]!) });
    }
    // `npm run <script> [-- args]`, `npm start [-- args]`, `npm test`; flags later in backticks
    // on the same line belong to it too ("`npm run demo -- --help` lists its options (`--accounts`, …)").
    for (const m of text.matchAll(/npm (?:run ([\w:-]+)|(start|test))(?: -- ([^`\n#]*))?/g)) {
      const script = m[1] ?? m[2]!;
      const command = scriptCommand(script);
      const args = (m[3] ?? '').trim().split(/\s+/).filter(Boolean);
      const later = [...text.slice(m.index! + m[0].length).matchAll(/`(--[a-z][a-z0-9-]*)`/g)].map((x) => x[1]!);
      const mention: CliMention = { line, script, words: [], flags: [] };
      if (command === '') {
        // npm run cli -- <command> …: the first argument names the command.
        const [first, ...rest] = args;
        if (first && isWord(first)) mention.command = first;
        else if (first && !first.startsWith('--')) { out.push(mention); continue; } // a placeholder
        const wf = wordsAndFlags(rest.join(' '));
        mention.flags = [...(first?.startsWith('--') ? [first] : []), ...wf.flags, ...later];
      } else if (typeof command === 'string') {
        mention.command = command;
        mention.flags = [...(args.join(' ').match(FLAG) ?? []), ...later];
      }
      out.push(mention);
    }
  });
  return out;
}

async function helpOf(command: string | undefined): Promise<string> {
  const { stdout } = await run(`${ROOT}node_modules/.bin/tsx`, ['cli/main.ts', ...(command ? [command] : []), '--help'], { cwd: ROOT, timeout: 60_000 });
  return stdout;
}

const named = (help: string, token: string) => new RegExp(`(^|[^\\w-])${token.replace(/[-/\\^$*+?.()|[\]{}]/g, '\\$&')}(?![\\w-])`, 'm').test(help);

// --- the checks ---------------------------------------------------------------------------

async function routeProblems(baseUrl: string, mentions: readonly RouteMention[]): Promise<Problem[]> {
  const problems: Problem[] = [];
  for (const r of mentions) {
    const res = await fetch(`${baseUrl}${concrete(r.path)}`, { method: r.method });
    const text = await res.text();
    let message = '';
    try {
      message = (JSON.parse(text) as { error?: { message?: string } }).error?.message ?? '';
    } catch {
      // not JSON: a registered route (metrics, a stream)
    }
    if (res.status === 404 && message.startsWith('no route ')) problems.push({ line: r.line, problem: `${r.method} ${r.path} is not a route the app registers` });
  }
  return problems;
}

/** Each command's --help ('' = usage-meter --help), three at a time: each is a TypeScript start-up. */
async function helpsOf(commands: readonly string[]): Promise<Map<string, string | Error>> {
  const helps = new Map<string, string | Error>();
  const all = [...new Set(['', ...commands])];
  for (let i = 0; i < all.length; i += 3) {
    await Promise.all(all.slice(i, i + 3).map(async (c) => helps.set(c, await helpOf(c || undefined).catch((err: Error) => err))));
  }
  return helps;
}

function cliProblems(mentions: readonly CliMention[], helps: ReadonlyMap<string, string | Error>): Problem[] {
  const main = helps.get('');
  if (typeof main !== 'string') return [{ line: 1, problem: `usage-meter --help failed: ${String(main)}` }];
  const problems: Problem[] = [];
  for (const m of mentions) {
    if (m.script !== undefined && SCRIPTS[m.script] === undefined) {
      problems.push({ line: m.line, problem: `npm script "${m.script}" is not in package.json` });
      continue;
    }
    if (m.command === undefined) continue;
    if (m.command !== '' && !named(main, m.command)) {
      problems.push({ line: m.line, problem: `"${m.command}" is not a usage-meter command (usage-meter --help)` });
      continue;
    }
    const help = helps.get(m.command);
    if (typeof help !== 'string') {
      problems.push({ line: m.line, problem: `usage-meter ${m.command} --help failed: ${String(help)}` });
      continue;
    }
    for (const f of m.flags) if (f !== '--help' && !named(help, f)) problems.push({ line: m.line, problem: `usage-meter ${m.command} --help does not name ${f}` });
    for (const w of m.words) if (!named(help, w)) problems.push({ line: m.line, problem: `usage-meter ${m.command} --help does not name "${w}"` });
  }
  return problems;
}

const commandsOf = (ms: readonly CliMention[]) => ms.flatMap((m) => (m.command !== undefined ? [m.command] : []));

// --- the tests ----------------------------------------------------------------------------

/** Lines that are wrong on purpose: the checks must flag each, by its line. */
const WRONG = [
  'Run `usage-meter export --period 2026-11 --no-such-flag`.',
  '`usage-meter quarantine list|purge`',
  '`npm run no-such-script`',
  '`usage-meter teleport`',
  '`GET /v1/no-such-route`',
];

describe('names in README.md', () => {
  let p: TestPipeline;
  let helps: Map<string, string | Error>;
  beforeAll(async () => {
    p = await startTestPipeline('readme');
    helps = await helpsOf([...commandsOf(cliMentions(README)), ...commandsOf(cliMentions(WRONG))]);
  }, 300_000);
  afterAll(async () => {
    await p?.stop();
  });

  it('finds what it checks, and flags lines that are wrong', async () => {
    const routes = routeMentions(README);
    expect(routes.length).toBeGreaterThan(15);
    expect(routes.some((r) => r.method === 'DELETE')).toBe(true);
    const cli = cliMentions(README);
    expect(cli.filter((m) => m.command !== undefined && m.flags.length > 0).length).toBeGreaterThan(3);
    expect(cli).toContainEqual({ line: expect.any(Number), command: 'query', words: ['table', 'csv', 'json'], flags: ['--param', '--format'] });
    expect(cliMentions(['`npm run demo -- --help` lists its options (`--accounts`, `--hours`)'])).toEqual([
      { line: 1, script: 'demo', command: 'demo', words: [], flags: ['--help', '--accounts', '--hours'] },
    ]);
    const wrong = [...cliProblems(cliMentions(WRONG), helps), ...(await routeProblems(p.url, routeMentions(WRONG)))];
    expect(wrong.map((w) => w.line).sort()).toEqual([1, 2, 3, 4, 5]);
    expect(wrong.find((w) => w.line === 1)!.problem).toBe('usage-meter export --help does not name --no-such-flag');
    expect(wrong.find((w) => w.line === 2)!.problem).toBe('usage-meter quarantine --help does not name "purge"');
  });

  it('names only HTTP routes the app registers', async () => {
    const problems = await routeProblems(p.url, routeMentions(README));
    expect(problems, report(problems)).toEqual([]);
  });

  it('names only commands, subcommands, options and npm scripts that exist', () => {
    const problems = cliProblems(cliMentions(README), helps);
    expect(problems, report(problems)).toEqual([]);
  });
});
