/**
 * docker-compose.yml cannot run here (no Docker engine), so its wiring is checked as data
 * against the rules of issue 16 and the images' own behaviour (docs/server-mode.md says
 * which image file each rule was read from):
 *  - it boots: ClickHouse config is mounted file by file, never over the image's config.d
 *    or users.d folders;
 *  - it scales: ingest, worker and api publish no host port, a pinned proxy in front
 *    re-resolves their replicas from Docker's DNS and health-checks them;
 *  - secrets are files: .env and secrets/ are ignored by git and Docker, passwords and keys
 *    reach processes as *_FILE + compose secrets, ingest gets no ClickHouse password;
 *  - least privilege: no CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT; the analytics user is
 *    read-only with a concurrency cap and a quota; the API gets its credentials;
 *  - the server image is the engine line the tests run (embedded version() major.minor);
 *  - every variable a service sets is one the config module reads, and parses.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { query as chdbQuery } from 'chdb';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema, loadConfig } from '../schemas/config.js';

const root = new URL('../', import.meta.url);
const read = (file: string) => readFileSync(new URL(file, root), 'utf8');

interface Service {
  image?: string;
  build?: unknown;
  command?: string[];
  entrypoint?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  ports?: string[];
  volumes?: string[];
  secrets?: (string | { source: string; target?: string })[];
  healthcheck?: { test?: string[]; disable?: boolean };
}
const compose = parse(read('docker-compose.yml'), { merge: true }) as {
  services: Record<string, Service>;
  secrets?: Record<string, { file?: string; environment?: string }>;
};
const services = compose.services;
const known = new Set(Object.keys(configSchema.shape));
const SCALED = ['ingest', 'worker', 'api'] as const;
const PIPELINE = ['migrate', ...SCALED] as const;

/** Resolves `${VAR:-default}` and `${VAR:?message}` the way compose would with an .env. */
function resolve(value: string, env: Record<string, string>): string {
  return value.replace(/\$\{(\w+)(?::[-?]([^}]*))?\}/g, (_m, name: string, fallback?: string) => env[name] ?? fallback ?? '');
}

const secretNames = (s: Service) => (s.secrets ?? []).map((x) => (typeof x === 'string' ? x : x.source));

/** A compose secret mounted without a target is /run/secrets/<name>. */
function secretPath(s: Service, name: string): string {
  const long = (s.secrets ?? []).find((x) => typeof x !== 'string' && x.source === name) as { target?: string } | undefined;
  return long?.target?.startsWith('/') ? long.target : `/run/secrets/${long?.target ?? name}`;
}

/** The host side of each bind mount (`./host:/container[:ro]`). */
const bindMounts = (s: Service) =>
  (s.volumes ?? [])
    .filter((v) => v.startsWith('./'))
    .map((v) => {
      const [host, container, mode] = v.split(':') as [string, string, string | undefined];
      return { host, container, mode };
    });

/** `<tag>…</tag>` bodies of an element, by name: enough for the small users.d files. */
function elements(xml: string, tag: string): string[] {
  const body = xml.replace(/<!--[\s\S]*?-->/g, '');
  return [...body.matchAll(new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, 'g'))].map((m) => m[1]!);
}
/** The element's text without the given child elements: a profile's own settings, not its constraints. */
const without = (xml: string, tag: string) => xml.replace(new RegExp(`<${tag}(?:\\s[^>]*)?>[\\s\\S]*?</${tag}>`, 'g'), '');
const one = (xml: string, tag: string) => {
  const found = elements(xml, tag);
  expect(found, `<${tag}>`).toHaveLength(1);
  return found[0]!;
};

describe('docker-compose.yml', () => {
  it('pins every image to an exact version', () => {
    expect(services.clickhouse?.image).toMatch(/^clickhouse\/clickhouse-server:\d+\.\d+\.\d+\.\d+$/);
    expect(services.redis?.image).toMatch(/^redis:\d+\.\d+\.\d+/);
    expect(services.proxy?.image).toMatch(/^(haproxy|nginx):\d+\.\d+\.\d+(-alpine)?$/);
  });

  it('pins the ClickHouse server to the engine line the tests run (embedded version() major.minor)', () => {
    const engine = String(chdbQuery('SELECT version()', 'TSV')).trim(); // e.g. 26.7.2.1
    const image = services.clickhouse!.image!.split(':')[1]!;
    const majorMinor = (v: string) => v.split('.').slice(0, 2).join('.');
    expect(engine).toMatch(/^\d+\.\d+\./);
    expect(majorMinor(image)).toBe(majorMinor(engine));
  });

  it('runs Redis with AOF and noeviction', () => {
    const cmd = services.redis!.command!.join(' ');
    expect(cmd).toContain('--appendonly yes');
    expect(cmd).toContain('--maxmemory-policy noeviction');
  });

  it('builds ingest, worker and api from the Dockerfile with their role', () => {
    for (const role of SCALED) {
      const s = services[role]!;
      expect(s.build).toBe('.');
      expect(s.environment?.ROLE).toBe(role);
    }
    const dockerfile = read('Dockerfile');
    expect(dockerfile).toMatch(/^FROM node:20/m);
    expect(dockerfile).toContain('npm ci');
    expect(dockerfile).toMatch(/^USER node$/m);
    expect(dockerfile).toContain('ENTRYPOINT ["node", "bin/usage-meter.js"]');
  });

  describe('boots', () => {
    it('mounts ClickHouse configuration file by file, never over the image folders', () => {
      const mounts = bindMounts(services.clickhouse!);
      expect(mounts.length).toBeGreaterThan(0);
      for (const m of mounts) {
        // The image keeps config.d/docker_related_config.xml (listen_host) and writes users.d/default-user.xml.
        expect(m.container, `${m.host} hides an image folder`).not.toMatch(/^\/etc\/clickhouse-server\/(config|users)\.d\/?$/);
        expect(m.mode, `${m.host} read-only`).toBe('ro');
        expect(() => readFileSync(new URL(m.host, root)), `${m.host} exists`).not.toThrow();
        if (m.container.startsWith('/etc/clickhouse-server/')) {
          expect(m.container).toMatch(/^\/etc\/clickhouse-server\/(config|users)\.d\/[\w.-]+\.xml$/);
          expect(path.basename(m.container)).toBe(path.basename(m.host));
          expect(['docker_related_config.xml', 'default-user.xml']).not.toContain(path.basename(m.container));
        }
      }
      const targets = mounts.map((m) => m.container);
      expect(targets).toContain('/etc/clickhouse-server/config.d/usage-meter.xml');
      expect(targets).toContain('/etc/clickhouse-server/users.d/analytics-reader.xml');
    });

    it('calls ClickHouse healthy only when it answers on the network, not on localhost alone', () => {
      const test = services.clickhouse!.healthcheck!.test!.join(' ');
      expect(test).toContain('http://clickhouse:8123/ping');
      expect(test).not.toMatch(/127\.0\.0\.1|localhost/);
    });

    it('hands over to the image entrypoint after checking the secret files', () => {
      expect(services.clickhouse!.entrypoint).toEqual(['/bin/bash', '/usr/local/bin/entrypoint-secrets.sh']);
      const script = read('deploy/clickhouse/entrypoint-secrets.sh');
      expect(script).toMatch(/^exec \/entrypoint\.sh "\$@"$/m);
      expect(script).toContain('CLICKHOUSE_ANALYTICS_PASSWORD_FILE');
      expect(script).toContain('! -s "$file"'); // missing or empty: stop, never an empty password
    });

    it('starts workers and the API only after migrations, everything after its stores are healthy', () => {
      expect(services.migrate!.command).toEqual(['migrate']);
      expect(services.migrate!.depends_on?.clickhouse?.condition).toBe('service_healthy');
      expect(services.migrate!.depends_on?.redis?.condition).toBe('service_healthy'); // the migration lock
      for (const role of ['worker', 'api']) expect(services[role]!.depends_on?.migrate?.condition).toBe('service_completed_successfully');
      for (const role of SCALED) expect(services[role]!.depends_on?.redis?.condition).toBe('service_healthy');
      expect(services.ingest!.depends_on?.clickhouse).toBeUndefined(); // ingest needs Redis only
    });
  });

  describe('scales', () => {
    it('publishes no host port on a scaled service', () => {
      for (const role of SCALED) expect(services[role]!.ports, role).toBeUndefined();
      // Published ports belong to services that run once.
      const published = Object.entries(services).filter(([, s]) => s.ports?.length).map(([name]) => name);
      expect(published).toEqual(['proxy']);
    });

    it('puts a proxy in front of ingest and the API that re-resolves their replicas and health-checks them', () => {
      const proxy = services.proxy!;
      expect(proxy.ports).toEqual(['${INGEST_PORT:-8080}:8080', '${API_PORT:-8081}:8081']);
      expect(proxy.volumes).toContain('./deploy/proxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro');
      const cfg = read('deploy/proxy/haproxy.cfg').replace(/#.*$/gm, '');
      expect(cfg).toMatch(/^resolvers docker\n\s+nameserver \w+ 127\.0\.0\.11:53$/m); // Docker's embedded DNS
      expect(cfg).toMatch(/^\s+hold valid \d+s$/m); // re-resolved: later --scale changes are picked up
      expect(cfg).toMatch(/default-server .*\binit-addr none\b.*\bresolvers docker\b.*\bcheck\b/);
      for (const [frontend, port, backend] of [
        ['ingest', '8080', 'ingest'],
        ['api', '8081', 'api'],
      ] as const) {
        expect(cfg).toMatch(new RegExp(`^frontend ${frontend}\\n\\s+bind :${port}\\n\\s+default_backend ${backend}$`, 'm'));
        const section = cfg.slice(cfg.search(new RegExp(`^backend ${backend}$`, 'm'))).split(/\n(?=\S)/)[0]!;
        expect(section).toMatch(new RegExp(`server-template ${backend} \\d+ ${backend}:8080`)); // the compose service name
        expect(section).toContain('http-check send meth GET uri /readyz');
      }
      // The proxy binds only unprivileged ports: the image runs as user haproxy.
      expect(cfg).not.toMatch(/bind :(?:[1-9]\d{0,2}|10[01]\d|102[0-3])\b/);
    });
  });

  describe('secrets', () => {
    it('keeps .env and secrets/ out of git and out of the image', () => {
      const lines = (file: string) => read(file).split('\n').map((l) => l.trim());
      for (const file of ['.gitignore', '.dockerignore']) {
        expect(lines(file), file).toContain('.env');
        expect(lines(file).some((l) => /^\/?secrets\/?$/.test(l)), `${file} secrets/`).toBe(true);
      }
      expect(lines('.gitignore')).toContain('!.env.example');
      expect(read('Dockerfile')).toContain('COPY . .'); // what .dockerignore guards
      // .env.example holds no secret any more: those are files.
      expect(read('.env.example')).not.toMatch(/^(CLICKHOUSE_PASSWORD|CLICKHOUSE_ANALYTICS_PASSWORD|API_KEYS)=/m);
    });

    it('passes every password and key as a compose secret file, never as a variable', () => {
      for (const [name, s] of Object.entries(services)) {
        for (const [key, value] of Object.entries(s.environment ?? {})) {
          expect(['CLICKHOUSE_PASSWORD', 'CLICKHOUSE_ANALYTICS_PASSWORD', 'API_KEYS'], `${name} sets ${key}`).not.toContain(key);
          if (key.endsWith('_FILE') && key !== 'COLLECTOR_TARGETS_FILE') {
            const secret = path.basename(String(value));
            expect(secretNames(s), `${name}: ${key} needs secret ${secret}`).toContain(secret);
            expect(value).toBe(secretPath(s, secret));
          }
        }
        for (const secret of secretNames(s)) expect(compose.secrets?.[secret]?.file, `secret ${secret}`).toMatch(/^\.\/secrets\/[\w-]+$/);
      }
    });

    it('gives ingest no ClickHouse settings at all, and each process only the secrets it uses', () => {
      const ingestEnv = Object.keys(services.ingest!.environment!);
      expect(ingestEnv.filter((k) => k.startsWith('CLICKHOUSE_'))).toEqual([]);
      expect(secretNames(services.ingest!)).toEqual(['api_keys']);
      expect(secretNames(services.migrate!)).toEqual(['clickhouse_password']);
      expect(secretNames(services.worker!).sort()).toEqual(['api_keys', 'clickhouse_password']);
      expect(secretNames(services.api!).sort()).toEqual(['api_keys', 'clickhouse_analytics_password', 'clickhouse_password']);
      expect(secretNames(services.clickhouse!).sort()).toEqual(['clickhouse_analytics_password', 'clickhouse_password']);
    });
  });

  describe('least privilege', () => {
    it('never gives the pipeline user access management', () => {
      const yamlWithoutComments = read('docker-compose.yml').replace(/(^|\s)#.*$/gm, '$1');
      expect(yamlWithoutComments).not.toContain('CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT');
      for (const [name, s] of Object.entries(services)) expect(Object.keys(s.environment ?? {}), name).not.toContain('CLICKHOUSE_DEFAULT_ACCESS_MANAGEMENT');
      // The image's entrypoint then writes <access_management>0</access_management> for CLICKHOUSE_USER.
      expect(services.clickhouse!.environment?.CLICKHOUSE_USER).toBe('${CLICKHOUSE_USER:-meter}');
      expect(services.clickhouse!.environment?.CLICKHOUSE_PASSWORD_FILE).toBe('/run/secrets/clickhouse_password');
    });

    it('runs ad-hoc analytics SQL as a read-only user with a concurrency cap and a quota', () => {
      const ch = services.clickhouse!;
      expect(ch.environment?.CLICKHOUSE_ANALYTICS_PASSWORD_FILE).toBe('/run/secrets/clickhouse_analytics_password');
      expect(services.api!.environment?.CLICKHOUSE_ANALYTICS_USER).toBe('analytics_reader');
      expect(services.api!.environment?.CLICKHOUSE_ANALYTICS_PASSWORD_FILE).toBe('/run/secrets/clickhouse_analytics_password');

      const xml = read('deploy/clickhouse/users.d/analytics-reader.xml');
      const user = one(one(xml, 'users'), 'analytics_reader');
      expect(user).toMatch(/<password from_env="CLICKHOUSE_ANALYTICS_PASSWORD"\s*\/>/);
      expect(one(user, 'access_management').trim()).toBe('0');
      expect(elements(one(user, 'grants'), 'query').map((q) => q.trim())).toEqual(['GRANT SELECT ON analytics.*', 'GRANT CREATE TEMPORARY TABLE ON *.*']);

      const profile = one(one(xml, 'profiles'), one(user, 'profile').trim());
      const setting = (name: string) => Number(one(without(profile, 'constraints'), name));
      expect(setting('readonly')).toBe(2);
      expect(setting('max_concurrent_queries_for_user')).toBeGreaterThan(0);
      expect(setting('max_memory_usage')).toBeGreaterThan(0);
      expect(setting('max_memory_usage_for_user')).toBeGreaterThanOrEqual(setting('max_memory_usage'));
      expect(setting('max_execution_time')).toBeGreaterThan(0);
      // A query cannot lift the caps (readonly=2 lets it change settings within constraints).
      const constraints = one(profile, 'constraints');
      for (const name of ['max_concurrent_queries_for_user', 'max_memory_usage_for_user']) expect(one(constraints, name)).toMatch(/<const\s*\/>/);
      for (const name of ['max_memory_usage', 'max_execution_time']) expect(Number(one(one(constraints, name), 'max'))).toBe(setting(name));

      const quotaName = one(user, 'quota').trim();
      expect(quotaName).not.toBe('default'); // the stock quota only tracks
      const intervals = elements(one(one(xml, 'quotas'), quotaName), 'interval');
      expect(intervals.length).toBeGreaterThan(0);
      for (const interval of intervals) {
        expect(Number(one(interval, 'duration'))).toBeGreaterThan(0);
        expect(Number(one(interval, 'queries'))).toBeGreaterThan(0);
        expect(Number(one(interval, 'execution_time'))).toBeGreaterThan(0);
      }
    });
  });

  describe('settings', () => {
    const scratch = mkdtempSync(path.join(tmpdir(), 'compose-secrets-'));
    afterAll(() => rmSync(scratch, { recursive: true, force: true }));
    // Stand-ins for the secret files, written as `echo … > secrets/x` would (one newline).
    const secretValues: Record<string, string> = {
      clickhouse_password: 'pipeline-password-0123456789',
      clickhouse_analytics_password: 'analytics-password-0123456789',
      api_keys: 'producer:agents:0123456789abcdef,billing:erp:0123456789abcdef,planner:capacity:0123456789abcdef,datascience:ml:0123456789abcdef,privacy:dpo:0123456789abcdef',
    };
    const localSecret = (name: string) => {
      const file = path.join(scratch, name);
      writeFileSync(file, `${secretValues[name]}\n`);
      return file;
    };
    const dotenv = Object.fromEntries(
      read('.env.example')
        .split('\n')
        .filter((l) => /^\w+=/.test(l))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );

    it.each(PIPELINE)('%s sets only variables the config module reads, and they parse into a valid config', (role) => {
      const s = services[role]!;
      const env = s.environment!;
      for (const name of Object.keys(env)) expect(known.has(name), `${role} sets unknown ${name}`).toBe(true);
      const resolved = Object.fromEntries(
        Object.entries(env).map(([k, v]) => {
          const value = resolve(String(v), dotenv);
          return [k, value.startsWith('/run/secrets/') ? localSecret(path.basename(value)) : value];
        }),
      );
      const config = loadConfig(resolved);
      // Every process uses Redis: migrate for the migration lock it shares with worker and api.
      expect(new URL(config.REDIS_URL!).hostname).toBe('redis');
      expect(config.KEY_PREFIX).toBe(dotenv.KEY_PREFIX);
      if (role !== 'migrate') {
        expect(config.HOST).toBe('0.0.0.0');
        expect(config.PORT).toBe(8080);
        expect(config.API_KEYS?.map((k) => k.role).sort()).toEqual(['billing', 'datascience', 'planner', 'privacy', 'producer']);
      }
      if (role === 'ingest') {
        expect(config.CLICKHOUSE_URL).toBeUndefined();
        expect(config.CLICKHOUSE_PASSWORD).toBe('');
      } else {
        expect(new URL(config.CLICKHOUSE_URL!).hostname).toBe('clickhouse');
        expect(config.CLICKHOUSE_USER).toBe('meter');
        expect(config.CLICKHOUSE_PASSWORD).toBe(secretValues.clickhouse_password); // one trailing newline trimmed
      }
      if (role === 'api') {
        expect(config.CLICKHOUSE_ANALYTICS_USER).toBe('analytics_reader');
        expect(config.CLICKHOUSE_ANALYTICS_PASSWORD).toBe(secretValues.clickhouse_analytics_password);
      }
    });

    it('uses the same pipeline user name in ClickHouse and in the pipeline', () => {
      for (const role of ['migrate', 'worker', 'api']) expect(services[role]!.environment?.CLICKHOUSE_USER).toBe(services.clickhouse!.environment?.CLICKHOUSE_USER);
    });
  });
});
