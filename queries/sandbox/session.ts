/**
 * ClickHouse sessions of their own for the analytics consumers (named queries, datasets,
 * ad-hoc SQL), apart from the pipeline's session, so nothing they do or set reaches the
 * billing path.
 *
 * Why "session" matters in embedded mode: a chdb session carries its settings from one
 * statement to the next, and has a single output buffer. When a query fails after its
 * output format has started (JSON, CSVWithNames, Parquet…), the rest of that format
 * surfaces at the head of the session's *next* result. So the statements of an embedded
 * session run one at a time, and after a failure an empty statement absorbs what was left.
 * A server keeps no such state between HTTP requests, and nothing is serialized there.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import type { Config } from '../../schemas/config.js';

/** As lib/clickhouse.ts: exact numbers as strings, UTC. */
const SESSION_SETTINGS: ClickHouseSettings = {
  output_format_json_quote_64bit_integers: 1,
  output_format_json_quote_decimals: 1,
  session_timezone: 'UTC',
};

type ChdbAsClientConnection = NonNullable<Parameters<typeof createClient>[0]>['connection'];

export interface SessionCredentials {
  username: string;
  password: string;
}

export interface SessionOptions {
  /** Make `analytics` the current database, so unqualified names can only mean it. */
  database?: 'analytics';
  /** Server mode: another ClickHouse user than CLICKHOUSE_USER. */
  credentials?: SessionCredentials;
}

export class ReaderSession {
  private tail: Promise<void> = Promise.resolve();

  constructor(
    readonly client: ClickHouseClient,
    /** chdb: statements are serialized and a failure is followed by a drain. */
    readonly embedded: boolean,
  ) {}

  /** Runs `fn` with the session to itself (embedded) and cleans up after a failure. */
  async run<T>(fn: (client: ClickHouseClient) => Promise<T>): Promise<T> {
    if (!this.embedded) return fn(this.client);
    const previous = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((resolve) => (release = resolve));
    await previous;
    try {
      return await fn(this.client);
    } catch (err) {
      await this.drain();
      throw err;
    } finally {
      release();
    }
  }

  close(): Promise<void> {
    return this.client.close();
  }

  private async drain(): Promise<void> {
    try {
      const rs = await this.client.query({ query: 'SELECT 1', format: 'TabSeparated' });
      await rs.text();
    } catch {
      // nothing more to absorb
    }
  }
}

export async function openSession(
  config: Pick<Config, 'CLICKHOUSE_URL' | 'CLICKHOUSE_USER' | 'CLICKHOUSE_PASSWORD' | 'DATA_DIR'>,
  opts: SessionOptions = {},
): Promise<ReaderSession> {
  if (config.CLICKHOUSE_URL) {
    const client = createClient({
      url: config.CLICKHOUSE_URL,
      username: opts.credentials?.username ?? config.CLICKHOUSE_USER,
      password: opts.credentials?.password ?? config.CLICKHOUSE_PASSWORD,
      ...(opts.database ? { database: opts.database } : {}),
      clickhouse_settings: SESSION_SETTINGS,
      request_timeout: 600_000,
    });
    return new ReaderSession(client, false);
  }
  // A second chdb session on the pipeline's data directory: same data, its own settings.
  const dir = path.join(config.DATA_DIR, 'clickhouse');
  mkdirSync(dir, { recursive: true });
  const client = createClient({
    connection: createChdbConnection({ path: dir }) as unknown as ChdbAsClientConnection,
    clickhouse_settings: SESSION_SETTINGS,
  });
  if (opts.database) await client.command({ query: `USE ${opts.database}` });
  return new ReaderSession(client, true);
}
