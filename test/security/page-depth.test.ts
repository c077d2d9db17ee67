import { expect } from 'chai';
import { createTestApp, promote, registerUser } from '../helpers/app.js';

/** A page may reach 10,000 rows deep at most: `page=1000000` on the hot feed would rank the whole feed. */
describe('security: pages are bounded in depth', () => {
  it('a page ending past row 10,000 is a 400 PAGE_TOO_DEEP naming page, on every paged list', async () => {
    const t = createTestApp();
    const u = await registerUser(t);
    const admin = await registerUser(t);
    await promote(t, admin);
    const lists: [string, string][] = [
      ['/api/community?sort=hot&page=1000000', u.cookie],
      ['/api/community?page=101&pageSize=100', u.cookie],
      ['/api/sessions?page=11&pageSize=1000', u.cookie],
      ['/api/admin/snapshots?page=201&pageSize=50', admin.cookie],
      ['/api/admin/audit?page=10001', admin.cookie],
    ];
    for (const [path, cookie] of lists) {
      const res = await t.http().get(path).set('Cookie', cookie);
      expect(res.status, `${path}: ${res.text}`).to.equal(400);
      expect(res.body).to.include({ code: 'PAGE_TOO_DEEP' });
      expect(res.body.details.fields[0]).to.include({ pointer: '/page' });
    }
    // The deepest page allowed answers.
    expect((await t.http().get('/api/community?sort=hot&page=100&pageSize=100').set('Cookie', u.cookie)).status).to.equal(200);
    expect((await t.http().get('/api/community?page=500').set('Cookie', u.cookie)).status).to.equal(200);
  });
});
