/**
 * Where keys come from: API_KEYS when set. Otherwise a single-machine install gets one
 * random key per role, written once to <data dir>/api-keys.json (mode 0600) and reused, so
 * `npm start` works out of the box without a default password anyone could guess.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { KEY_ROLES, type ApiKey } from '../schemas/config.js';

const keysFileSchema = z.array(z.object({ role: z.enum(KEY_ROLES), id: z.string().min(1), secret: z.string().min(16) }));

export function apiKeysPath(dataDir: string): string {
  return path.join(dataDir, 'api-keys.json');
}

export function resolveApiKeys(configured: ApiKey[] | undefined, dataDir: string): { keys: ApiKey[]; generatedFile?: string } {
  if (configured && configured.length > 0) return { keys: configured };
  const file = apiKeysPath(dataDir);
  if (existsSync(file)) return { keys: keysFileSchema.parse(JSON.parse(readFileSync(file, 'utf8'))), generatedFile: file };
  const keys = KEY_ROLES.map((role) => ({ role, id: `${role}-local`, secret: randomBytes(24).toString('base64url') }));
  mkdirSync(dataDir, { recursive: true });
  writeFileSync(file, JSON.stringify(keys, null, 2) + '\n', { mode: 0o600 });
  return { keys, generatedFile: file };
}
