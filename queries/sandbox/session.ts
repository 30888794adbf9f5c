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
 *
 * Either way a session admits a bounded number of statements (gate.ts): a few run, a few
 * wait, the rest are refused with a Retry-After; a waiter whose caller left never runs.
 */
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { createClient, type ClickHouseClient, type ClickHouseSettings } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import { ConfigError, type Config } from '../../schemas/config.js';
import { Gate } from './gate.js';

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

/** Statements allowed to wait for a session when none is configured. */
export const DEFAULT_QUEUE_LIMIT = 8;

/**
 * Server mode: statements of one session running at once. The server schedules them
 * itself; the bound keeps one consumer from taking all of its query slots.
 */
const SERVER_CONCURRENCY = 4;

export interface SessionOptions {
  /** Make `analytics` the current database, so unqualified names can only mean it. */
  database?: 'analytics';
  /** Server mode: another ClickHouse user than CLICKHOUSE_USER. */
  credentials?: SessionCredentials;
  /** Statements that may wait for the session (SANDBOX_QUEUE_LIMIT); more get SessionBusy. */
  queueLimit?: number;
  /** The longest a statement runs (its max_execution_time): bounds a Retry-After. */
  maxRunS?: number;
}

/** The session held by one statement: release it exactly once, after a failure via fail(). */
export interface HeldSession {
  client: ClickHouseClient;
  release(): void;
  /** Absorbs what a failed statement left in an embedded session, then releases it. */
  fail(): Promise<void>;
}

export class ReaderSession {
  readonly gate: Gate;

  constructor(
    readonly client: ClickHouseClient,
    /** chdb: statements are serialized and a failure is followed by a drain. */
    readonly embedded: boolean,
    opts: Pick<SessionOptions, 'queueLimit' | 'maxRunS'> = {},
  ) {
    this.gate = new Gate({
      concurrency: embedded ? 1 : SERVER_CONCURRENCY,
      queueLimit: opts.queueLimit ?? DEFAULT_QUEUE_LIMIT,
      maxRunS: opts.maxRunS ?? 60,
    });
  }

  /**
   * Runs `fn` with the session to itself (embedded) and cleans up after a failure.
   * Throws SessionBusy when too many wait, QueryAbandoned when `signal` fires first.
   */
  async run<T>(fn: (client: ClickHouseClient) => Promise<T>, opts: { signal?: AbortSignal } = {}): Promise<T> {
    const held = await this.hold(opts.signal);
    try {
      const out = await fn(this.client);
      held.release();
      return out;
    } catch (err) {
      await held.fail();
      throw err;
    }
  }

  /** Takes the session for a statement whose result outlives the call (a streamed body). */
  async hold(signal?: AbortSignal): Promise<HeldSession> {
    const release = await this.gate.acquire(signal);
    return {
      client: this.client,
      release,
      fail: async () => {
        try {
          if (this.embedded) await this.drain();
        } finally {
          release();
        }
      },
    };
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
    // The sandbox's session (database analytics) must not fall back to the pipeline's user,
    // which owns the schema: fail closed, naming what to set (schemas/config.ts analyticsCredentials).
    if (opts.database === 'analytics' && !opts.credentials) {
      throw new ConfigError('server mode: the analytics SQL session needs the read-only user: set CLICKHOUSE_ANALYTICS_USER and CLICKHOUSE_ANALYTICS_PASSWORD (or _FILE)');
    }
    const client = createClient({
      url: config.CLICKHOUSE_URL,
      username: opts.credentials?.username ?? config.CLICKHOUSE_USER,
      password: opts.credentials?.password ?? config.CLICKHOUSE_PASSWORD,
      ...(opts.database ? { database: opts.database } : {}),
      clickhouse_settings: SESSION_SETTINGS,
      request_timeout: 600_000,
    });
    return new ReaderSession(client, false, opts);
  }
  // A second chdb session on the pipeline's data directory: same data, its own settings.
  const dir = path.join(config.DATA_DIR, 'clickhouse');
  mkdirSync(dir, { recursive: true });
  const client = createClient({
    connection: createChdbConnection({ path: dir }) as unknown as ChdbAsClientConnection,
    clickhouse_settings: SESSION_SETTINGS,
  });
  if (opts.database) await client.command({ query: `USE ${opts.database}` });
  return new ReaderSession(client, true, opts);
}
