/** The config module: defaults, overrides, and errors that name the setting. */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../schemas/config.js';

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
});
