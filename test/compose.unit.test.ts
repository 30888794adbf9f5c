/**
 * docker-compose.yml cannot run here (no Docker engine), so its wiring is checked as data:
 * pinned images, Redis durability settings, and every variable the services set is one the
 * config module reads, pointing at the right service.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema, loadConfig } from '../schemas/config.js';

const root = new URL('../', import.meta.url);
const compose = parse(readFileSync(new URL('docker-compose.yml', root), 'utf8'), { merge: true }) as {
  services: Record<string, { image?: string; build?: unknown; command?: string[]; environment?: Record<string, string>; depends_on?: Record<string, { condition: string }>; ports?: string[] }>;
};
const services = compose.services;
const known = new Set(Object.keys(configSchema.shape));

/** Resolves `${VAR:-default}` and `${VAR:?message}` the way compose would with an .env. */
function resolve(value: string, env: Record<string, string>): string {
  return value.replace(/\$\{(\w+)(?::[-?]([^}]*))?\}/g, (_m, name: string, fallback?: string) => env[name] ?? fallback ?? '');
}

describe('docker-compose.yml', () => {
  it('pins the official ClickHouse and Redis images', () => {
    expect(services.clickhouse?.image).toMatch(/^clickhouse\/clickhouse-server:\d+\.\d+\.\d+\.\d+$/);
    expect(services.redis?.image).toMatch(/^redis:\d+\.\d+\.\d+/);
  });

  it('runs Redis with AOF and noeviction', () => {
    const cmd = services.redis!.command!.join(' ');
    expect(cmd).toContain('--appendonly yes');
    expect(cmd).toContain('--maxmemory-policy noeviction');
  });

  it('builds ingest, worker and api from the Dockerfile with their role', () => {
    for (const role of ['ingest', 'worker', 'api']) {
      const s = services[role]!;
      expect(s.build).toBe('.');
      expect(s.environment?.ROLE).toBe(role);
    }
    const dockerfile = readFileSync(new URL('Dockerfile', root), 'utf8');
    expect(dockerfile).toMatch(/^FROM node:20/m);
    expect(dockerfile).toContain('npm ci');
    expect(dockerfile).toContain('ENTRYPOINT ["node", "bin/usage-meter.js"]');
  });

  it('sets only variables the config module reads, and they parse into a valid config', () => {
    const dotenv = Object.fromEntries(
      readFileSync(new URL('.env.example', root), 'utf8')
        .split('\n')
        .filter((l) => /^\w+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    for (const role of ['ingest', 'worker', 'api', 'migrate']) {
      const env = services[role]!.environment!;
      for (const name of Object.keys(env)) expect(known.has(name), `${role} sets unknown ${name}`).toBe(true);
      const resolved = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, resolve(String(v), dotenv)]));
      const config = loadConfig(resolved);
      expect(new URL(config.REDIS_URL!).hostname).toBe('redis');
      expect(new URL(config.CLICKHOUSE_URL!).hostname).toBe('clickhouse');
      expect(config.HOST).toBe('0.0.0.0');
      expect(config.API_KEYS?.map((k) => k.role).sort()).toEqual(['billing', 'datascience', 'planner', 'privacy', 'producer']);
    }
  });

  it('runs ad-hoc analytics SQL as a dedicated read-only ClickHouse user', () => {
    const ch = services.clickhouse!;
    expect((ch as { volumes?: string[] }).volumes).toContain('./deploy/clickhouse/users.d/analytics-reader.xml:/etc/clickhouse-server/users.d/analytics-reader.xml:ro');
    expect(ch.environment?.CLICKHOUSE_ANALYTICS_PASSWORD).toBeDefined();
    expect(services.api!.environment?.CLICKHOUSE_ANALYTICS_USER).toBe('analytics_reader');
    const users = readFileSync(new URL('deploy/clickhouse/users.d/analytics-reader.xml', root), 'utf8');
    expect(users).toContain('<analytics_reader>');
    expect(users).toMatch(/GRANT SELECT ON analytics\.\*/);
  });

  it('starts workers and the API only after migrations, everything after its stores are healthy', () => {
    expect(services.migrate!.command).toEqual(['migrate']);
    expect(services.migrate!.depends_on?.clickhouse?.condition).toBe('service_healthy');
    for (const role of ['worker', 'api']) expect(services[role]!.depends_on?.migrate?.condition).toBe('service_completed_successfully');
    for (const role of ['ingest', 'worker', 'api']) expect(services[role]!.depends_on?.redis?.condition).toBe('service_healthy');
    expect(services.ingest!.depends_on?.clickhouse).toBeUndefined(); // ingest needs Redis only
  });
});
