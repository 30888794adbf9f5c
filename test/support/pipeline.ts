/**
 * A real pipeline for a test file: real Redis (keys under a private prefix, removed
 * afterwards), the real embedded ClickHouse on a temporary data directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { startPipeline, type Pipeline } from '../../app/pipeline.js';
import { createLogger } from '../../lib/log.js';
import { isIdle } from '../../domain/ledger.js';
import { loadConfig } from '../../schemas/config.js';

export const KEYS = {
  producer: 'test-producer-secret-0001',
  billing: 'test-billing-secret-00001',
  planner: 'test-planner-secret-00001',
  datascience: 'test-datasci-secret-00001',
  privacy: 'test-privacy-secret-00001',
} as const;

const API_KEYS = Object.entries(KEYS)
  .map(([role, secret]) => `${role}:${role}-test:${secret}`)
  .join(',');

export function uniquePrefix(name: string): string {
  return `umtest-${name}-${process.pid}-${Date.now().toString(36)}`;
}

export interface TestPipeline extends Pipeline {
  dataDir: string;
  post(body: unknown, opts?: { key?: string; contentType?: string }): Promise<{ status: number; body: any; headers: Headers }>;
  get(pathAndQuery: string, key?: string): Promise<{ status: number; body: any }>;
  waitIdle(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startTestPipeline(name: string, settings: Record<string, string> = {}): Promise<TestPipeline> {
  const dataDir = settings.DATA_DIR ?? mkdtempSync(path.join(os.tmpdir(), `um-${name}-`));
  const config = loadConfig(
    {},
    {
      DATA_DIR: dataDir,
      PORT: '0',
      KEY_PREFIX: uniquePrefix(name),
      API_KEYS,
      ROLLUP_INTERVAL_MS: '100',
      ROLLUP_QUIET_MS: '0', // tests wait for completeness; nothing to gain from debouncing
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'error',
      REDIS_URL: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
      ...settings,
    },
  );
  const pipeline = await startPipeline(config, createLogger(config.LOG_LEVEL));
  return {
    ...pipeline,
    dataDir,
    async post(body, opts = {}) {
      const contentType = opts.contentType ?? 'application/json';
      const res = await fetch(`${pipeline.url}/v1/samples`, {
        method: 'POST',
        headers: { 'content-type': contentType, ...(opts.key === '' ? {} : { authorization: `Bearer ${opts.key ?? KEYS.producer}` }) },
        body: typeof body === 'string' ? body : JSON.stringify(body),
      });
      return { status: res.status, body: await res.json(), headers: res.headers };
    },
    async get(pathAndQuery, key = KEYS.billing) {
      const res = await fetch(`${pipeline.url}${pathAndQuery}`, { headers: key ? { authorization: `Bearer ${key}` } : {} });
      const text = await res.text();
      return { status: res.status, body: res.headers.get('content-type')?.includes('json') ? JSON.parse(text) : text };
    },
    async waitIdle(timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (!(await isIdle(pipeline.redis.client, pipeline.redisKeys))) {
        if (Date.now() > deadline) throw new Error('pipeline did not become idle in time');
        await sleep(50);
      }
    },
    async stop() {
      const prefix = config.KEY_PREFIX;
      await pipeline.close();
      await deleteKeys(config.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export async function deleteKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
