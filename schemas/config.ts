/**
 * The one configuration module. Settings come from the environment, CLI flags override
 * them (by the same name, e.g. --data-dir for DATA_DIR), and the result is parsed once at
 * start. A bad value stops the process with a message naming the setting.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';

export const ROLES = ['all', 'ingest', 'worker', 'api'] as const;
export type ProcessRole = (typeof ROLES)[number];

export const KEY_ROLES = ['producer', 'billing', 'planner', 'datascience', 'privacy'] as const;
export type KeyRole = (typeof KEY_ROLES)[number];

export interface ApiKey {
  role: KeyRole;
  /** Public name of the key: the only thing logs and the audit trail ever show. */
  id: string;
  secret: string;
}

const int = (min: number, max: number) => z.coerce.number().int().min(min).max(max);

/**
 * Label values that are public names, not customer data: cloud region and zone names
 * (eu-west-1, us-east-2b) and instance type names (m5.large, db.r5.4xlarge). Written for
 * both RE2 (ClickHouse match()) and JavaScript.
 */
export const DEFAULT_ANALYTICS_LABEL_PATTERN =
  '^(?:[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}[a-z]?|(?:db[.])?[a-z][a-z0-9]*[.][0-9]*(?:nano|micro|small|medium|large|xlarge|metal))$';

function isRegExp(s: string): boolean {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}

const apiKeysSchema = z
  .string()
  .transform((raw, ctx): ApiKey[] => {
    const keys: ApiKey[] = [];
    for (const entry of raw.split(',').map((e) => e.trim()).filter(Boolean)) {
      const [role, id, ...rest] = entry.split(':');
      const secret = rest.join(':');
      if (!KEY_ROLES.includes(role as KeyRole) || !id || secret.length < 16) {
        ctx.addIssue({
          code: 'custom',
          // Never echo the entry: it holds a secret.
          message: `each entry must be role:id:secret with role one of ${KEY_ROLES.join('|')} and a secret of at least 16 characters`,
        });
        return z.NEVER;
      }
      keys.push({ role: role as KeyRole, id, secret });
    }
    return keys;
  })
  .optional();

/** Every setting, by its environment name. Defaults are what a single-machine user wants. */
export const configSchema = z.object({
  DATA_DIR: z.string().min(1).default('./.data'),
  CLICKHOUSE_URL: z.url().optional(),
  CLICKHOUSE_USER: z.string().default('default'),
  CLICKHOUSE_PASSWORD: z.string().default(''),
  CLICKHOUSE_PASSWORD_FILE: z.string().min(1).optional(),
  /**
   * Server mode: the read-only user ad-hoc analytics SQL runs as (SELECT on analytics only).
   * Required there for the API role and `usage-meter sql` (analyticsCredentials below).
   */
  CLICKHOUSE_ANALYTICS_USER: z.string().min(1).default('analytics_reader'),
  CLICKHOUSE_ANALYTICS_PASSWORD: z.string().optional(),
  CLICKHOUSE_ANALYTICS_PASSWORD_FILE: z.string().min(1).optional(),
  /** Unset: redis://127.0.0.1:6379, or a private redis-server if nothing answers there. */
  REDIS_URL: z.url().optional(),
  REDIS_URL_FILE: z.string().min(1).optional(),
  KEY_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_{}-]{1,64}$/, 'letters, digits, _ - { } only (braces make a Redis Cluster hash tag)')
    .default('um'),
  ROLE: z.enum(ROLES).default('all'),
  HOST: z.string().default('127.0.0.1'),
  PORT: int(0, 65535).default(8080),
  API_KEYS: apiKeysSchema,
  API_KEYS_FILE: z.string().min(1).optional(),
  MAX_BODY_BYTES: int(1024, 1024 * 1024 * 1024).default(16 * 1024 * 1024),
  MAX_BATCH_ITEMS: int(1, 100_000).default(10_000),
  /** Back-pressure: above this many waiting batch jobs ingest answers 503. */
  MAX_QUEUED_BATCHES: int(1, 1_000_000).default(1_000),
  K_ANONYMITY: int(2, 1000).default(10),
  /** Analytics statements (ad-hoc SQL; named queries and datasets) that may wait for their session; more get 429. */
  SANDBOX_QUEUE_LIMIT: int(0, 1000).default(8),
  ANALYTICS_ATTRIBUTES: z
    .string()
    .default('instance_type,zone')
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean)),
  /**
   * Label values (region, zone, instance_type) published as written even when fewer than
   * K_ANONYMITY accounts share them: a regular expression (RE2, anchored with ^…$)…
   */
  ANALYTICS_LABEL_PATTERN: z
    .string()
    .default(DEFAULT_ANALYTICS_LABEL_PATTERN)
    .refine((s) => s.startsWith('^') && s.endsWith('$') && isRegExp(s), 'must be a regular expression anchored with ^ and $'),
  /** …and exact values (comma-separated). Anything else needs K_ANONYMITY accounts or becomes '*'. */
  ANALYTICS_LABEL_VALUES: z
    .string()
    .default('')
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean)),
  /** Batch jobs a worker holds at once: their rows are coalesced into one insert. */
  WORKER_CONCURRENCY: int(1, 256).default(16),
  /** Rows per coalesced insert at most (10k–20k is the engine's sweet spot; more only costs memory). */
  MAX_INSERT_ROWS: int(1000, 1_000_000).default(20_000),
  /**
   * Rows the engine refused for good that the quarantine holds at most (lib/quarantine.ts).
   * Beyond it a refused batch stays a retried job, then a dead letter, until an operator
   * replays or discards quarantined rows.
   */
  QUARANTINE_MAX_ROWS: int(1, 10_000_000).default(100_000),
  /** The rollup runs a round at least this often… */
  ROLLUP_INTERVAL_MS: int(50, 3_600_000).default(500),
  /** …and this long after the previous round when a batch was written meanwhile (a sample's visibility delay). */
  ROLLUP_MIN_GAP_MS: int(0, 3_600_000).default(100),
  /** Whole-hour work (recomputation, analytics) waits until its hour is quiet this long, or ROLLUP_MAX_DELAY_MS. */
  ROLLUP_QUIET_MS: int(0, 3_600_000).default(1000),
  ROLLUP_MAX_DELAY_MS: int(0, 3_600_000).default(5000),
  /** How long a batch job may hold its lock before it counts as stalled and is retried. */
  JOB_LOCK_MS: int(1000, 600_000).default(30_000),
  JOB_ATTEMPTS: int(1, 1000).default(10),
  /** Time between two passes that remove in-flight marks left without a job by a crash. */
  INFLIGHT_RECONCILE_MS: int(1000, 3_600_000).default(60_000),
  /** A billing period (UTC month) closes this long after its end; later samples become adjustments. */
  PERIOD_GRACE_HOURS: int(0, 24 * 90).default(48),
  PERIOD_CLOSE_INTERVAL_MS: int(50, 3_600_000).default(60_000),
  /** Retention (privacy policy §8): raw samples, terminated accounts' usage, audit trail. */
  RAW_RETENTION_DAYS: int(1, 3650).default(90),
  ACCOUNT_RETENTION_MONTHS: int(0, 120).default(12),
  AUDIT_RETENTION_MONTHS: int(1, 240).default(24),
  RETENTION_INTERVAL_MS: int(50, 86_400_000).default(3_600_000),
  /** Pull collectors: a JSON target list (ingest/collectors/README.md), from a file and/or inline. */
  COLLECTOR_TARGETS_FILE: z.string().min(1).optional(),
  COLLECTOR_TARGETS: z.string().min(2).optional(),
  /**
   * Per-key rate limits (issue 11), counted in Redis so they hold across ingest processes.
   * 0 turns one off (benchmarks). Ingest counts requests: with MAX_BATCH_ITEMS that also
   * bounds a key's samples per second.
   */
  INGEST_REQUESTS_PER_S: int(0, 1_000_000).default(500),
  ANALYTICS_REQUESTS_PER_MIN: int(0, 1_000_000).default(300),
  /** Billing and privacy requests in progress at once in one process (app/api-in-flight.ts); beyond it 503 + Retry-After. */
  API_MAX_IN_FLIGHT: int(1, 100_000).default(64),
  /** Producer sequence tracking (X-Producer-Id/-Seq): producers remembered at most… */
  PRODUCER_MAX_TRACKED: int(1, 1_000_000).default(10_000),
  /** …missing-number ranges remembered per producer (beyond it only their count)… */
  PRODUCER_MAX_GAP_RANGES: int(1, 10_000).default(100),
  /** …and how long an idle producer is remembered. */
  PRODUCER_IDLE_DAYS: int(1, 3650).default(30),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /**
   * ROLE=all: how many separate ingest processes take the HTTP traffic on PORT (HTTP
   * parsing, validation and enqueueing off the engine's event loop), forwarding every
   * other route to this process (app/process-split.ts). 0: one process does everything.
   */
  INGEST_PROCESSES: int(0, 16).default(0),
  /**
   * Set by the split for the ingest processes it starts, not by users: where every route
   * this process does not serve is forwarded (the engine's process, on loopback).
   */
  UPSTREAM_URL: z.url().optional(),
});

export type Config = z.output<typeof configSchema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/**
 * Secrets that may instead come from a file named by `<NAME>_FILE` (Docker and compose
 * secrets are mounted as files under /run/secrets/): the file's text, less one trailing
 * newline. Setting both is an error; so is a file that cannot be read or is empty (an
 * empty API_KEYS would otherwise mean "generate keys", an empty password "no password").
 */
export const FILE_SETTINGS = ['CLICKHOUSE_PASSWORD', 'CLICKHOUSE_ANALYTICS_PASSWORD', 'API_KEYS', 'REDIS_URL'] as const;

function readSecretFile(name: string, file: string): string {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`invalid configuration:\n  ${name}_FILE: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  const value = text.replace(/\r?\n$/, '');
  if (value === '') throw new ConfigError(`invalid configuration:\n  ${name}_FILE: ${file} is empty`);
  return value;
}

/** Reads only the settings this module knows; everything else in the environment is ignored. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Record<string, string | undefined> = {}): Config {
  const input: Record<string, string | undefined> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = overrides[key] ?? env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const both = FILE_SETTINGS.filter((name) => input[name] !== undefined && input[`${name}_FILE`] !== undefined);
  if (both.length > 0) {
    throw new ConfigError(`invalid configuration:\n${both.map((name) => `  ${name}: set either ${name} or ${name}_FILE, not both`).join('\n')}`);
  }
  for (const name of FILE_SETTINGS) {
    const file = input[`${name}_FILE`];
    if (file !== undefined) input[name] = readSecretFile(name, file);
  }
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${String(i.path[0] ?? '?')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return { ...parsed.data, DATA_DIR: path.resolve(parsed.data.DATA_DIR) };
}

export interface AnalyticsCredentials {
  username: string;
  password: string;
}

/**
 * Who ad-hoc analytics SQL (POST /v1/analytics/sql, `usage-meter sql`) runs as. Embedded
 * mode has no users: undefined, and the sandbox's checks and read-only settings are the
 * wall. Server mode fails closed: without the read-only user's password it throws instead
 * of falling back to CLICKHOUSE_USER, which owns the schema and can write billing data.
 */
export function analyticsCredentials(
  config: Pick<Config, 'CLICKHOUSE_URL' | 'CLICKHOUSE_USER' | 'CLICKHOUSE_ANALYTICS_USER' | 'CLICKHOUSE_ANALYTICS_PASSWORD'>,
): AnalyticsCredentials | undefined {
  if (!config.CLICKHOUSE_URL) return undefined;
  if (!config.CLICKHOUSE_ANALYTICS_PASSWORD) {
    throw new ConfigError(
      'server mode (CLICKHOUSE_URL) runs analytics SQL as a read-only ClickHouse user, never as CLICKHOUSE_USER: ' +
        'set CLICKHOUSE_ANALYTICS_PASSWORD or CLICKHOUSE_ANALYTICS_PASSWORD_FILE (and CLICKHOUSE_ANALYTICS_USER, default analytics_reader; ' +
        'see deploy/clickhouse/users.d/analytics-reader.xml)',
    );
  }
  if (config.CLICKHOUSE_ANALYTICS_USER === config.CLICKHOUSE_USER) {
    throw new ConfigError(`CLICKHOUSE_ANALYTICS_USER must be a read-only user, not CLICKHOUSE_USER (${config.CLICKHOUSE_USER})`);
  }
  return { username: config.CLICKHOUSE_ANALYTICS_USER, password: config.CLICKHOUSE_ANALYTICS_PASSWORD };
}

/** `--data-dir` → `DATA_DIR`: flags and variables share one name space. */
export function flagToSetting(flag: string): string {
  return flag.replace(/^--/, '').replace(/-/g, '_').toUpperCase();
}
