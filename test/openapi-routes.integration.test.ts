/**
 * The catalogue and the server agree: every route the whole app (ROLE=all, every part
 * started as in production) registers has a catalogue entry, and every entry is
 * registered. A route added without documentation fails here. Also: /openapi.json serves
 * the document the catalogue builds, without a key.
 *
 * Routes are collected with an onRoute hook installed through Fastify's
 * `fastify.initialization` diagnostics channel, before any route is added.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { FastifyInstance, RouteOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPENAPI_PATH, ROUTE_CATALOGUE, UNDOCUMENTED_ROUTES } from '../app/api-contract/index.js';
import { buildOpenApiDocument } from '../app/openapi.js';
import { startTestPipeline, type TestPipeline } from './support/pipeline.js';

const registered = new Set<string>();
const onInit = (message: unknown) => {
  const { fastify } = message as { fastify: FastifyInstance };
  fastify.addHook('onRoute', (route: RouteOptions) => {
    for (const method of [route.method].flat()) registered.add(`${method} ${route.url}`);
  });
};

describe('route catalogue against the registered routes', () => {
  let p: TestPipeline;
  beforeAll(async () => {
    subscribe('fastify.initialization', onInit);
    try {
      p = await startTestPipeline('openapi-routes');
    } finally {
      unsubscribe('fastify.initialization', onInit);
    }
  }, 120_000);
  afterAll(async () => {
    await p?.stop();
  });

  // HEAD routes are Fastify's own twins of GET routes (exposeHeadRoutes).
  const routes = () => [...registered].filter((r) => !(r.startsWith('HEAD ') && registered.has(`GET ${r.slice(5)}`)));

  it('documents every route the server registers', () => {
    expect(routes().length).toBeGreaterThan(20);
    const documented = new Set([...ROUTE_CATALOGUE, ...UNDOCUMENTED_ROUTES].map((r) => `${r.method} ${r.path}`));
    const missing = routes().filter((r) => !documented.has(r));
    expect(missing, 'routes without an entry in app/api-contract/').toEqual([]);
  });

  it('registers every route the catalogue documents', () => {
    const all = new Set(routes());
    const absent = [...ROUTE_CATALOGUE, ...UNDOCUMENTED_ROUTES].map((r) => `${r.method} ${r.path}`).filter((r) => !all.has(r));
    expect(absent, 'catalogue entries the server does not register').toEqual([]);
  });

  it('serves the document at /openapi.json without a key', async () => {
    const res = await fetch(`${p.url}${OPENAPI_PATH}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await res.json()).toEqual(JSON.parse(JSON.stringify(buildOpenApiDocument())));
  });
});
