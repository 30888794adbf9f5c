/** The config module: defaults, overrides, and errors that name the setting. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { startPipeline } from '../app/pipeline.js';
import { runSqlCommand } from '../cli/sql.js';
import { openSession } from '../queries/sandbox/session.js';
import { ConfigError, FILE_SETTINGS, analyticsCredentials, configSchema, loadConfig } from '../schemas/config.js';

describe('configuration', () => {
  it('has defaults a single machine can run with', () => {
    const c = loadConfig({});
    expect(c.REDIS_URL).toBeUndefined(); // the default address, or a private redis-server
    expect(c.ROLE).toBe('all');
    expect(c.K_ANONYMITY).toBe(10);
    expect(c.CLICKHOUSE_URL).toBeUndefined();
    expect(c.DATA_DIR.endsWith('.data')).toBe(true);
  });

  it('lets flags override the environment', () => {
    expect(loadConfig({ PORT: '9000' }, { PORT: '9100' }).PORT).toBe(9100);
  });

  it('parses API keys by role', () => {
    const c = loadConfig({ API_KEYS: 'producer:agents:0123456789abcdef, billing:erp:fedcba9876543210' });
    expect(c.API_KEYS).toEqual([
      { role: 'producer', id: 'agents', secret: '0123456789abcdef' },
      { role: 'billing', id: 'erp', secret: 'fedcba9876543210' },
    ]);
  });

  it.each([
    [{ PORT: 'eighty' }, 'PORT'],
    [{ ROLE: 'everything' }, 'ROLE'],
    [{ K_ANONYMITY: '1' }, 'K_ANONYMITY'],
    [{ REDIS_URL: 'not a url' }, 'REDIS_URL'],
    [{ KEY_PREFIX: 'has space' }, 'KEY_PREFIX'],
  ])('stops on %o naming %s', (env, name) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(new RegExp(`^invalid configuration:\\n  ${name}:`));
  });

  it('never echoes a secret in an API_KEYS error', () => {
    try {
      loadConfig({ API_KEYS: 'wizard:x:supersecretvalue123' });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toContain('API_KEYS');
      expect((err as Error).message).not.toContain('supersecretvalue123');
    }
  });

  describe('secrets from files (*_FILE)', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'config-secrets-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const file = (name: string, text: string) => {
      const p = path.join(dir, name);
      writeFileSync(p, text);
      return p;
    };

    it('has a _FILE variant, itself a setting (and flag), for each secret', () => {
      expect([...FILE_SETTINGS].sort()).toEqual(['API_KEYS', 'CLICKHOUSE_ANALYTICS_PASSWORD', 'CLICKHOUSE_PASSWORD', 'REDIS_URL']);
      for (const name of FILE_SETTINGS) expect(Object.keys(configSchema.shape)).toContain(`${name}_FILE`);
    });

    it('reads the file and trims one trailing newline, no more', () => {
      const c = loadConfig({
        CLICKHOUSE_PASSWORD_FILE: file('pw', 'pipeline secret\n'),
        CLICKHOUSE_ANALYTICS_PASSWORD_FILE: file('apw', 'analytics secret\r\n'),
        API_KEYS_FILE: file('keys', 'producer:agents:0123456789abcdef\n'),
        REDIS_URL_FILE: file('redis', 'redis://:pass@redis:6379\n'),
      });
      expect(c.CLICKHOUSE_PASSWORD).toBe('pipeline secret');
      expect(c.CLICKHOUSE_ANALYTICS_PASSWORD).toBe('analytics secret');
      expect(c.API_KEYS).toEqual([{ role: 'producer', id: 'agents', secret: '0123456789abcdef' }]);
      expect(c.REDIS_URL).toBe('redis://:pass@redis:6379');
      // A password may end in whitespace, and a second newline is part of it.
      expect(loadConfig({ CLICKHOUSE_PASSWORD_FILE: file('pw2', ' spaced \n\n') }).CLICKHOUSE_PASSWORD).toBe(' spaced \n');
      expect(loadConfig({ CLICKHOUSE_PASSWORD_FILE: file('pw3', 'no newline') }).CLICKHOUSE_PASSWORD).toBe('no newline');
    });

    it('takes the _FILE variant from a flag too', () => {
      expect(loadConfig({}, { CLICKHOUSE_PASSWORD_FILE: file('pw4', 'from flag\n') }).CLICKHOUSE_PASSWORD).toBe('from flag');
    });

    it.each(FILE_SETTINGS.map((name) => [name]))('refuses %s and its _FILE together, naming both', (name) => {
      const env = { [name]: 'x', [`${name}_FILE`]: file(`both-${name}`, 'y\n') };
      expect(() => loadConfig(env)).toThrow(ConfigError);
      expect(() => loadConfig(env)).toThrow(new RegExp(`^invalid configuration:\\n  ${name}: set either ${name} or ${name}_FILE, not both$`));
    });

    it('refuses a file that is missing or empty, naming the variable and never echoing a value', () => {
      expect(() => loadConfig({ API_KEYS_FILE: path.join(dir, 'absent') })).toThrow(/API_KEYS_FILE: cannot read .*absent \(ENOENT\)/);
      // Empty would mean "generate keys" or "no password": never a silent fallback.
      expect(() => loadConfig({ API_KEYS_FILE: file('empty', '\n') })).toThrow(/API_KEYS_FILE: .* is empty/);
      expect(() => loadConfig({ CLICKHOUSE_PASSWORD_FILE: file('empty2', '') })).toThrow(/CLICKHOUSE_PASSWORD_FILE: .* is empty/);
      try {
        loadConfig({ API_KEYS_FILE: file('bad-keys', 'wizard:x:supersecretvalue123\n') });
        expect.unreachable();
      } catch (err) {
        expect((err as Error).message).toContain('API_KEYS');
        expect((err as Error).message).not.toContain('supersecretvalue123');
      }
    });
  });

  describe('analytics credentials (fail closed in server mode)', () => {
    const server = { CLICKHOUSE_URL: 'http://clickhouse:8123', CLICKHOUSE_USER: 'meter' };

    it('needs none embedded: there are no users, the sandbox checks are the wall', () => {
      expect(analyticsCredentials(loadConfig({}))).toBeUndefined();
    });

    it('returns the read-only user on a server', () => {
      expect(analyticsCredentials(loadConfig({ ...server, CLICKHOUSE_ANALYTICS_PASSWORD: 'ro-secret' }))).toEqual({ username: 'analytics_reader', password: 'ro-secret' });
      expect(analyticsCredentials(loadConfig({ ...server, CLICKHOUSE_ANALYTICS_USER: 'reader2', CLICKHOUSE_ANALYTICS_PASSWORD: 'ro-secret' }))?.username).toBe('reader2');
    });

    it('stops, naming the variables, instead of falling back to CLICKHOUSE_USER', () => {
      const config = loadConfig({ ...server, CLICKHOUSE_PASSWORD: 'full-privilege' });
      expect(() => analyticsCredentials(config)).toThrow(ConfigError);
      for (const name of ['CLICKHOUSE_ANALYTICS_PASSWORD', 'CLICKHOUSE_ANALYTICS_PASSWORD_FILE', 'CLICKHOUSE_ANALYTICS_USER']) {
        expect(() => analyticsCredentials(config)).toThrow(name);
      }
    });

    it('stops an API process (role api or all) at start-up, before it connects to anything', async () => {
      for (const ROLE of ['api', 'all']) {
        // Nothing listens on port 1: reaching Redis first would fail differently.
        const config = loadConfig({ ...server, ROLE, REDIS_URL: 'redis://127.0.0.1:1', CLICKHOUSE_PASSWORD: 'full-privilege' });
        await expect(startPipeline(config, pino({ level: 'silent' }))).rejects.toThrow(/CLICKHOUSE_ANALYTICS_PASSWORD/);
      }
    });

    it('stops `usage-meter sql` on a server without the read-only user, before any query', async () => {
      vi.stubEnv('CLICKHOUSE_ANALYTICS_PASSWORD', '');
      vi.stubEnv('CLICKHOUSE_ANALYTICS_PASSWORD_FILE', '');
      try {
        const io = { stdout: process.stdout, stderr: process.stderr };
        const run = runSqlCommand(['SELECT 1', '--clickhouse-url', 'http://127.0.0.1:1', '--clickhouse-user', 'meter', '--clickhouse-password', 'full-privilege'], io);
        await expect(run).rejects.toThrow(ConfigError);
        await expect(runSqlCommand(['SELECT 1', '--clickhouse-url', 'http://127.0.0.1:1'], io)).rejects.toThrow(/CLICKHOUSE_ANALYTICS_PASSWORD/);
      } finally {
        vi.unstubAllEnvs();
      }
    });

    it('never opens the sandbox session on a server as the pipeline user', async () => {
      const config = { CLICKHOUSE_URL: 'http://127.0.0.1:1', CLICKHOUSE_USER: 'meter', CLICKHOUSE_PASSWORD: 'full-privilege', DATA_DIR: '.' };
      await expect(openSession(config, { database: 'analytics' })).rejects.toThrow(/CLICKHOUSE_ANALYTICS_PASSWORD/);
      const session = await openSession(config, { database: 'analytics', credentials: { username: 'analytics_reader', password: 'ro' } });
      await session.close(); // an HTTP client: nothing was contacted
    });

    it('refuses the pipeline user as the analytics user', () => {
      const config = loadConfig({ ...server, CLICKHOUSE_ANALYTICS_USER: 'meter', CLICKHOUSE_ANALYTICS_PASSWORD: 'x' });
      expect(() => analyticsCredentials(config)).toThrow(/CLICKHOUSE_ANALYTICS_USER must be a read-only user/);
    });
  });
});
