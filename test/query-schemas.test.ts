import { readdirSync, readFileSync } from 'node:fs';
import { expect } from 'chai';
import { routeTable } from '../server/routing.js';
import { QUERY_SCHEMAS } from '../server/schemas.js';
import type { JsonSchema } from '../server/validation.js';
import { createTestApp, promote, registerUser, type TestApp, type TestUser } from './helpers/app.js';

type Json = Record<string, unknown>;
interface Refusal {
  error: string;
  code: string;
  message: string;
  details: { fields: { field: string; pointer: string }[] };
}

/** Values the parameter's schema refuses, each with how it is spelled in the query string. */
function badValues(name: string, schema: JsonSchema): string[] {
  const bad = [`${name}=1&${name}=2`];
  if (schema.type === 'integer') bad.push(`${name}=x`, `${name}=1.5`, `${name}=${Number(schema.minimum) - 1}`);
  if (schema.type === 'integer' && schema.maximum !== undefined) bad.push(`${name}=${Number(schema.maximum) + 1}`);
  if (schema.type === 'boolean') bad.push(`${name}=maybe`);
  if (schema.enum) bad.push(`${name}=no-such-value`);
  if (schema.type === 'string' && !schema.enum) bad.push(`${name}=a%00b`);
  if (schema.maxLength !== undefined) bad.push(`${name}=${'x'.repeat(Number(schema.maxLength) + 1)}`);
  return bad;
}

/**
 * Every route with a query schema (server/schemas.ts, QUERY_SCHEMAS), driven from that table: each
 * parameter's bad values are a 400 in the usual envelope naming that parameter and nothing else,
 * and the OpenAPI document lists the schema's parameters for the route.
 */
describe('query strings: validated by each route\'s schema', function () {
  this.timeout(60_000);
  let t: TestApp;
  let admin: TestUser;
  let doc: { paths: Record<string, Record<string, { parameters?: { name: string; in: string }[] }>> };

  before(async () => {
    t = createTestApp();
    admin = await registerUser(t);
    await promote(t, admin);
    doc = (await t.http().get('/api/openapi.json').expect(200)).body as typeof doc;
  });

  for (const [route, schema] of Object.entries(QUERY_SCHEMAS)) {
    const [method, path] = route.split(' ') as [string, string];
    const properties = (schema.properties ?? {}) as Record<string, JsonSchema>;

    describe(route, () => {
      it('is a route of the app, and its documented parameters are the schema\'s', () => {
        expect(routeTable(t.app).map((r) => `${r.method} ${r.path}`)).to.include(route);
        const operation = doc.paths[path.replace(/:(\w+)/g, '{$1}')]?.[method.toLowerCase()];
        // The operators' HTML pages are not in the API's document.
        if (path.startsWith('/api/')) {
          expect(operation, `${route} is documented`).to.be.an('object');
          expect(operation!.parameters!.filter((p) => p.in === 'query').map((p) => p.name)).to.deep.equal(Object.keys(properties));
        }
      });

      for (const [name, property] of Object.entries(properties)) {
        it(`a bad ${name} is a 400 naming ${name}`, async () => {
          for (const query of badValues(name, property)) {
            const url = `${path.replace(/:\w+/g, '1')}?${query}`;
            const res = await t.http()[method.toLowerCase() as 'get' | 'post'](url).set('Cookie', admin.cookie);
            expect(res.status, `${method} ${url}: ${res.text}`).to.equal(400);
            const body = res.body as Refusal;
            expect(body, url).to.include({ error: 'Validation Error', code: 'VALIDATION_ERROR' });
            expect(body.details.fields.map((f) => [f.field, f.pointer]), url).to.deep.equal([[name, `/${name}`]]);
            expect(body.message, url).to.match(new RegExp(`^${name} `));
          }
        });
      }
    });
  }

  it('no route reads its query string but through its schema (routes/params.ts, queryOf)', () => {
    const dir = new URL('../server/routes/', import.meta.url);
    const readers = readdirSync(dir)
      .filter((f) => f.endsWith('.ts') && f !== 'params.ts')
      .filter((f) => /ctx\.(request\.)?query\b(?!string)/.test(readFileSync(new URL(f, dir), 'utf8')));
    expect(readers).to.deep.equal([]);
  });

  it('an empty parameter is absent, an undeclared one is ignored, and values are coerced from text', async () => {
    const res = await t.http().get('/api/community?sort=&contentType=&page=2&pageSize=5&utm_source=x').set('Cookie', admin.cookie);
    expect(res.status, res.text).to.equal(200);
    expect(res.body as Json).to.include({ page: 2, pageSize: 5 });
  });
});
