/**
 * The web console at /console/: static files from console/ and uPlot from node_modules,
 * read once at start into memory (a fixed, small set: nothing is read from disk per
 * request, and no path from a URL ever reaches the file system).
 *
 * Every response carries a Content-Security-Policy that allows only this origin's own
 * scripts, styles and API (no CDN, no inline script or style, no framing, no form posts),
 * plus the usual hardening headers. Files are revalidated on every load (ETag → 304) so a
 * deploy never mixes old modules with new ones, and sent gzipped when the browser accepts it.
 *
 * The console holds no secret: it asks for an API key, keeps it in sessionStorage and sends
 * it as `Authorization: Bearer` to the same API everyone else uses.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { errorBody } from '../lib/http-errors.js';

export const CONSOLE_PREFIX = '/console/';

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
  'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=(), usb=()',
};

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
};

/** Bounds on what is loaded: the console is a handful of small files. */
const MAX_FILE_BYTES = 512 * 1024;
const MAX_FILES = 64;

interface Asset {
  body: Buffer;
  gzip?: Buffer;
  contentType: string;
  etag: string;
}

const CONSOLE_DIR = fileURLToPath(new URL('../console/', import.meta.url));

/** uPlot's browser build, served from the dependency (never a CDN). */
function vendorFiles(): Record<string, string> {
  const require = createRequire(import.meta.url);
  const dist = path.dirname(require.resolve('uplot/dist/uPlot.esm.js'));
  return { 'vendor/uPlot.esm.js': path.join(dist, 'uPlot.esm.js'), 'vendor/uPlot.min.css': path.join(dist, 'uPlot.min.css') };
}

/** Every servable file under console/, by its path below /console/. */
function consoleFiles(dir = CONSOLE_DIR, below = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const rel = below ? `${below}/${entry.name}` : entry.name;
    if (entry.isDirectory()) Object.assign(out, consoleFiles(path.join(dir, entry.name), rel));
    else if (entry.isFile() && path.extname(entry.name) in CONTENT_TYPES) out[rel] = path.join(dir, entry.name);
  }
  return out;
}

export function loadConsoleAssets(): Map<string, Asset> {
  const files = { ...consoleFiles(), ...vendorFiles() };
  const names = Object.keys(files);
  if (names.length > MAX_FILES) throw new Error(`console/: ${names.length} files, more than the ${MAX_FILES} it may hold`);
  if (!('index.html' in files)) throw new Error('console/index.html is missing');
  const assets = new Map<string, Asset>();
  for (const [name, file] of Object.entries(files)) {
    if (statSync(file).size > MAX_FILE_BYTES) throw new Error(`console asset ${name} is larger than ${MAX_FILE_BYTES} bytes`);
    const body = readFileSync(file);
    const contentType = CONTENT_TYPES[path.extname(file)]!;
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    // Compress what compresses; a PNG is already compressed.
    const gzip = contentType.startsWith('image/png') ? undefined : gzipSync(body, { level: 9 });
    assets.set(name, { body, contentType, etag, ...(gzip && gzip.length < body.length ? { gzip } : {}) });
  }
  return assets;
}

function secure(reply: FastifyReply): FastifyReply {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v);
  return reply;
}

function send(req: FastifyRequest, reply: FastifyReply, asset: Asset) {
  secure(reply).header('cache-control', 'no-cache').header('etag', asset.etag).header('vary', 'accept-encoding');
  const match = req.headers['if-none-match'];
  if (match && match.split(',').some((t) => t.trim() === asset.etag)) return reply.code(304).send();
  reply.type(asset.contentType);
  if (asset.gzip && /\bgzip\b/.test(req.headers['accept-encoding'] ?? '')) return reply.header('content-encoding', 'gzip').send(asset.gzip);
  return reply.send(asset.body);
}

export function registerConsole(app: FastifyInstance, assets: Map<string, Asset> = loadConsoleAssets()): void {
  app.get('/console', (_req, reply) => secure(reply).redirect(CONSOLE_PREFIX, 301));
  app.get('/console/', (req, reply) => send(req, reply, assets.get('index.html')!));
  app.get<{ Params: { '*': string } }>('/console/*', (req, reply) => {
    // A lookup in the loaded set only: '../' or an encoded path cannot name anything else.
    const asset = assets.get(req.params['*']);
    if (!asset) return secure(reply).code(404).send(errorBody('not_found', `no console file ${req.url.split('?')[0]!.slice(0, 200)}`));
    return send(req, reply, asset);
  });
}
