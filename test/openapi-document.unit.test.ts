/**
 * The OpenAPI document (app/openapi.ts) is a valid OpenAPI 3.1 document, checked against
 * the official schema by an independent validator, and says what the catalogue says about
 * keys: every operation names the roles it admits, and every keyed one documents 401/403.
 */
import { Validator } from '@seriousme/openapi-schema-validator';
import { describe, expect, it } from 'vitest';
import { ROUTE_CATALOGUE } from '../app/api-contract/index.js';
import { buildOpenApiDocument, openApiPath, rolesOf, SECURITY_SCHEME } from '../app/openapi.js';
import { KEY_ROLES } from '../schemas/config.js';

const validate = async (doc: unknown) => new Validator().validate(structuredClone(doc) as Parameters<Validator["validate"]>[0]);

describe('the OpenAPI document', () => {
  const doc = buildOpenApiDocument();

  it('validates against the OpenAPI 3.1 schema', async () => {
    const result = await validate(doc);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
    expect(doc.openapi).toMatch(/^3\.1\./);
  });

  it('is refused by the same validator when broken (the check is not vacuous)', async () => {
    const badParameter = structuredClone(doc);
    badParameter.paths['/v1/samples']!.post!.parameters = [{ name: 'x', in: 'nowhere' }];
    expect((await validate(badParameter)).valid).toBe(false);
    const badStatus = structuredClone(doc);
    (badStatus.paths['/healthz']!.get!.responses as Record<string, unknown>)['2000'] = { description: 'no such status' };
    expect((await validate(badStatus)).valid).toBe(false);
  });

  it('resolves every $ref to a component it holds', () => {
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"([^"]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(20);
    for (const ref of refs) {
      expect(ref).toMatch(/^#\/components\/schemas\//);
      expect(doc.components.schemas[ref.slice('#/components/schemas/'.length)], ref).toBeDefined();
    }
  });

  it('lists every catalogue entry once, with a unique operationId', () => {
    const ops = Object.values(doc.paths).flatMap((byMethod) => Object.values(byMethod));
    expect(ops).toHaveLength(ROUTE_CATALOGUE.length);
    const ids = ops.map((o) => o.operationId);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('gives every operation its roles as a security requirement and as x-role, and documents key refusals', () => {
    for (const route of ROUTE_CATALOGUE) {
      const op = doc.paths[openApiPath(route.path)]![route.method.toLowerCase()]!;
      const roles = rolesOf(route);
      expect(op['x-role'], route.path).toEqual(roles);
      for (const role of roles) expect(KEY_ROLES).toContain(role);
      const responses = op.responses as Record<string, { content?: Record<string, { schema?: unknown }> }>;
      if (route.access === 'public') {
        expect(op.security, route.path).toEqual([]);
        expect(responses['401']).toBeUndefined();
      } else {
        const admitted = (op.security as Record<string, string[]>[]).flatMap((req) => req[SECURITY_SCHEME] ?? []);
        expect(route.access === 'any key' ? [] : admitted.sort()).toEqual(route.access === 'any key' ? [] : [...roles].sort());
        for (const status of ['401', '403']) expect(responses[status]?.content?.['application/json']?.schema, `${route.path} ${status}`).toEqual({ $ref: '#/components/schemas/Error' });
      }
      // Every operation documents at least one success.
      expect(Object.keys(responses).some((s) => /^[23]\d\d$/.test(s)), route.path).toBe(true);
    }
  });

  it('describes path parameters for every template variable and nothing else', () => {
    for (const [path, byMethod] of Object.entries(doc.paths)) {
      const vars = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]).sort();
      for (const op of Object.values(byMethod)) {
        const params = ((op.parameters ?? []) as { in: string; name: string }[]).filter((p) => p.in === 'path').map((p) => p.name).sort();
        expect(params, path).toEqual(vars);
      }
    }
  });
});
