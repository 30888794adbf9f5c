/**
 * The API's own description, served by every role: GET /openapi.json (the OpenAPI 3.1
 * document, app/openapi.ts) and GET /docs/api, an interactive reference rendered by
 * Swagger UI from node_modules (@fastify/swagger-ui), never a CDN.
 *
 * The reference runs under a Content-Security-Policy of its own that allows this origin
 * only: its scripts, styles and calls ("Try it out" sends the key you enter to this same
 * server), no inline script or style, no framing, no form posts. The document is built
 * once, at start, and served from memory.
 */
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { FastifyInstance } from 'fastify';
import { OPENAPI_PATH, REFERENCE_PREFIX } from './api-contract/index.js';
import { buildOpenApiDocument } from './openapi.js';

/**
 * Swagger UI's React tree inserts one fixed `<style>` element; it is allowed by its hash
 * alone (never 'unsafe-inline'). A Swagger UI upgrade that changes it shows up as a CSP
 * violation in test/openapi-reference-browser.test.ts, and chromium's message names the
 * new hash.
 */
const SWAGGER_UI_INLINE_STYLE = "'sha256-RL3ie0nH+Lzz2YNqQN83mnU0J1ot4QL7b99vMdIX99w='";

export const REFERENCE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  `style-src 'self' ${SWAGGER_UI_INLINE_STYLE}`,
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "manifest-src 'self'",
  "object-src 'none'",
  "frame-ancestors 'none'",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');

const REFERENCE_HEADERS: Record<string, string> = {
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

export function registerApiReference(app: FastifyInstance): void {
  const document = buildOpenApiDocument();
  const body = JSON.stringify(document);
  app.get(OPENAPI_PATH, (_req, reply) => reply.type('application/json; charset=utf-8').header('cache-control', 'no-cache').send(body));

  // A scope of its own: the headers below apply to the reference page and its assets only.
  void app.register(async (scope) => {
    scope.addHook('onSend', async (_req, reply) => {
      for (const [k, v] of Object.entries(REFERENCE_HEADERS)) reply.header(k, v);
    });
    await scope.register(swagger, { mode: 'static', specification: { document: document as never } });
    await scope.register(swaggerUi, {
      routePrefix: REFERENCE_PREFIX,
      staticCSP: REFERENCE_CSP,
      uiConfig: { deepLinking: true, persistAuthorization: false, tryItOutEnabled: false },
      theme: { title: 'usage-meter API reference' },
    });
  });
}
