import { expect } from 'chai';
import { type Actor, answersAs, expectationOf, fillPath, headersFor, useAccessSuite } from '../helpers/access-table.js';

/** `%xx` of a character, in lower- or upper-case hex. */
const pct = (c: string, upper = false): string => {
  const hex = c.charCodeAt(0).toString(16).padStart(2, '0');
  return `%${upper ? hex.toUpperCase() : hex}`;
};

/**
 * Other spellings of `path` (`/a/b/c`, parameters filled in): letter case, a trailing slash, doubled
 * slashes, percent-encoded letters and slashes, dot segments (plain and encoded), backslashes, and a
 * percent sign encoded for a second decoding.
 */
export function spellings(path: string): string[] {
  const segments = path.split('/').slice(1);
  const first = segments[0]!;
  const rest = segments.slice(1).join('/');
  const tail = rest ? `/${rest}` : '';
  const title = (s: string): string => s.charAt(0).toUpperCase() + s.slice(1);
  const variants = [
    path.toUpperCase(),
    `/${segments.map(title).join('/')}`,
    `/${title(first)}${tail}`,
    `${path}/`,
    `/${path}`,
    `/${first}/${tail}`,
    `${path}//`,
    `/${pct(first[0]!)}${first.slice(1)}${tail}`,
    `/${pct(first[0]!, true)}${first.slice(1)}${tail}`,
    rest ? `/${first}${pct('/')}${rest}` : `${path}${pct('/')}`,
    rest ? `/${first}${pct('/', true)}${rest}` : `${path}${pct('/', true)}`,
    `/.${path}`,
    `/${first}/.${tail}`,
    `/${first}/x/..${tail}`,
    `${path}/.`,
    `/${first}/${pct('.')}${tail}`,
    `/${first}/x/${pct('.', true)}${pct('.', true)}${tail}`,
    `/${first}/x/.${pct('.')}${tail}`,
    rest ? `/${first}\\${rest}` : `${path}\\`,
    `/${first}/x/${pct('%')}2e${pct('%')}2e${tail}`,
  ];
  return [...new Set(variants)].filter((v) => v !== path);
}

/**
 * One spelling per route: for every route of the app's route table, every other spelling of its path
 * reaches the same guard as the canonical form or no route at all. As anonymous, as a plain user (the
 * owner of the targets) and as another user, a variant answers what the route's expected access
 * says for that caller, or 404, and never 2xx where the canonical form refuses.
 */
describe('security: route spellings', function () {
  this.timeout(180_000);
  const suite = useAccessSuite();

  it('no spelling of a route answers a caller more than its canonical form does', async () => {
    const { client, routes, f } = suite;
    const wrong: string[] = [];
    let tried = 0;
    // Login and logout act on the caller's own login session: each caller has a spare one for them,
    // made anew only once a spelling reached the route and used it.
    const spare = new Map<Actor, Record<string, string>>();
    for (const route of routes) {
      const e = expectationOf(route);
      expect(e, `${route.method} ${route.path} has an expected access`).to.not.equal(undefined);
      for (const actor of ['anonymous', 'owner', 'user'] as Actor[]) {
        const expected = e!.expect[actor];
        if (expected === undefined) continue;
        const canonical = fillPath(route.path, e!.params?.(f) ?? {});
        for (const path of spellings(canonical)) {
          tried += 1;
          const headers = e!.ownLogin ? (spare.get(actor) ?? (await headersFor(client, f, actor, route.method, true))) : await headersFor(client, f, actor, route.method, false);
          const res = await client.send(route.method, path, { headers, ...(e!.body ? { json: e!.body(f, actor) } : {}) });
          if (e!.ownLogin) {
            if (res.status < 400) spare.delete(actor);
            else spare.set(actor, headers);
          }
          const refusedCanonically = expected !== 'served' && expected >= 300;
          const ok = res.status === 404 || answersAs(res.status, expected);
          if (!ok || (refusedCanonically && res.status < 300)) {
            wrong.push(`${route.method} ${path} as ${actor}: ${res.status} (canonical ${route.path}: ${expected}) ${res.text.slice(0, 120)}`);
          }
        }
      }
    }
    expect(wrong, `${wrong.length} of ${tried} spellings:\n${wrong.slice(0, 40).join('\n')}`).to.deep.equal([]);
    console.log(`      route spellings: ${routes.length} routes, ${tried} cases`);
  });
});
