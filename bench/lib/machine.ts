/** What the results were measured on and with: machine, versions, commit, command. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import { REPO_ROOT } from './child.js';
import { REDIS_URL } from './server.js';

export interface MachineInfo {
  cores: number;
  cpuModel: string;
  memoryGB: number;
  os: string;
  node: string;
  packages: Record<string, string>;
  redis: string;
  /** Filled in from the engine stage: SELECT version() on the embedded engine. */
  clickhouse?: string;
  git: { commit: string; short: string; dirty: boolean };
  loadAverageAtStart: number[];
}

function pkgVersion(name: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

function git(args: string[]): string {
  try {
    return execFileSync('git', args, { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
  } catch {
    return '';
  }
}

export async function machineInfo(): Promise<MachineInfo> {
  let redis = 'unknown';
  const client = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 1 });
  try {
    await client.connect();
    redis = /redis_version:(\S+)/.exec(await client.info('server'))?.[1] ?? 'unknown';
  } catch {
    // reported as unknown; the stages that need Redis fail with their own message
  } finally {
    client.disconnect();
  }
  const commit = git(['rev-parse', 'HEAD']);
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model ?? 'unknown',
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()}`,
    node: process.version,
    packages: Object.fromEntries(['chdb', '@clickhouse/client', 'bullmq', 'fastify', 'ioredis', 'zod'].map((p) => [p, pkgVersion(p)])),
    redis,
    git: { commit, short: commit.slice(0, 7) || 'nogit', dirty: git(['status', '--porcelain', '--untracked-files=no']) !== '' },
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

/** The command as typed: `npm run bench -- …` when run through npm, else the node command. */
export function commandLine(argv = process.argv.slice(2)): string {
  const quoted = argv.map((a) => (/^[\w.,:=/@+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
  if (process.env.npm_lifecycle_event === 'bench') return `npm run bench${quoted ? ` -- ${quoted}` : ''}`;
  return `node --import tsx bench/run.ts${quoted ? ` ${quoted}` : ''}`;
}
