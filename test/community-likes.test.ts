import { expect } from 'chai';
import { createTestApp, registerUser, type TestApp, type TestUser } from './helpers/app.js';
import { ownTestDatabase } from './helpers/database.js';
import type { Knex } from '../db/knex.js';

/** How many likes the table holds for a snapshot (the count `like_count` must equal). */
async function countLikes(knex: Knex, snapshotId: number): Promise<number> {
  const row = (await knex('community_likes').where({ snapshot_id: snapshotId }).count<{ n: string }[]>({ n: '*' }).first()) as { n: string } | undefined;
  return Number(row?.n ?? 0);
}

interface Item {
  id: number;
  title: string;
  categoryId: number;
  categorySlug: string;
  likeCount: number;
  isLikedByUser: boolean;
  createdAt: string;
  user: { id: string; firstName: string | null };
}
interface Page {
  items: Item[];
  total: number;
  page: number;
  pageSize: number;
  totalPages: number;
}

const HOUR = 3_600_000;

/** The hot score of docs/api.md §7, as the feed must order by it. */
const hot = (likes: number, ageHours: number): number => (likes + 1) / (ageHours + 2) ** 1.5;

/**
 * Likes and the feed's orders and filters, through the real app against a database of this file's
 * own, so that the feed holds exactly the snapshots made here.
 */
describe('community likes and the feed', function () {
  this.timeout(60_000);
  const db = ownTestDatabase({ poolMax: 10 });
  let t: TestApp;
  let creator: TestUser;
  let other: TestUser;
  let likers: TestUser[];
  let categories: { id: number; slug: string }[];

  /** A ready snapshot of a new session of `owner`'s, ready `ageHours` ago. */
  async function readySnapshot(owner: TestUser, fields: { title: string; subreddits: string[]; categoryId?: number; ageHours: number }): Promise<number> {
    const res = await t
      .http()
      .post('/api/sessions')
      .set('Cookie', owner.cookie)
      .send({ title: fields.title, subreddits: fields.subreddits, ...(fields.categoryId ? { categoryId: fields.categoryId } : {}), shareToCommunity: true });
    expect(res.status, res.text).to.equal(201);
    const id = (res.body as { communitySnapshot: { id: number } }).communitySnapshot.id;
    await db.knex('community_snapshots')
      .where({ id })
      .update({ status: 'ready', ready_at: new Date(Date.now() - fields.ageHours * HOUR) });
    return id;
  }

  const as = (who: TestUser | undefined) => ({
    get: (path: string) => (who ? t.http().get(path).set('Cookie', who.cookie) : t.http().get(path)),
    like: (id: number) => (who ? t.http().post(`/api/community/sessions/${id}/like`).set('Cookie', who.cookie) : t.http().post(`/api/community/sessions/${id}/like`)),
    unlike: (id: number) => (who ? t.http().delete(`/api/community/sessions/${id}/like`).set('Cookie', who.cookie) : t.http().delete(`/api/community/sessions/${id}/like`)),
  });

  async function feed(who: TestUser, query: string): Promise<Page> {
    const res = await as(who).get(`/api/community?${query}`);
    expect(res.status, res.text).to.equal(200);
    return res.body as Page;
  }

  async function likeAll(id: number, users: TestUser[]): Promise<void> {
    for (const u of users) expect((await as(u).like(id)).status).to.equal(200);
  }

  before(async () => {
    t = createTestApp({ knex: db.knex });
    creator = await registerUser(t, { firstName: 'Marguerite' });
    await db.knex('users').where({ id: creator.user.id }).update({ last_name: 'Oyelaran' });
    other = await registerUser(t, { firstName: 'Bo' });
    likers = await Promise.all(Array.from({ length: 50 }, (_, i) => registerUser(t, { firstName: `Liker${i}` })));
    categories = (await db.knex('categories').orderBy('id').select('id', 'slug')) as { id: number; slug: string }[];
    expect(categories.length).to.be.greaterThan(1);
  });

  afterEach(async () => {
    // Each test starts from an empty feed (sessions cascade to their snapshots and likes).
    await db.knex('sessions').del();
  });

  describe('POST and DELETE /api/community/sessions/:id/like', () => {
    it('anonymous: 401, and nothing is recorded', async () => {
      const id = await readySnapshot(creator, { title: 'Anon', subreddits: ['pics'], ageHours: 1 });
      for (const res of [await as(undefined).like(id), await as(undefined).unlike(id)]) {
        expect(res.status).to.equal(401);
        expect(res.body).to.include({ code: 'UNAUTHORIZED' });
      }
      expect(await countLikes(db.knex, id)).to.equal(0);
    });

    it('404 for a snapshot that is not ready or does not exist; 400 for a malformed id', async () => {
      const id = await readySnapshot(creator, { title: 'Pending', subreddits: ['pics'], ageHours: 1 });
      await db.knex('community_snapshots').where({ id }).update({ status: 'pending', ready_at: null });
      for (const res of [await as(other).like(id), await as(other).unlike(id), await as(other).like(2147483646)]) {
        expect(res.status).to.equal(404);
        expect(res.body).to.include({ code: 'NOT_FOUND' });
      }
      expect((await as(other).like(0)).status).to.equal(400);
      expect(await countLikes(db.knex, id)).to.equal(0);
    });

    it('is idempotent: like twice is one like, unlike twice is none', async () => {
      const id = await readySnapshot(creator, { title: 'Twice', subreddits: ['pics'], ageHours: 1 });
      for (let i = 0; i < 2; i++) {
        const res = await as(other).like(id);
        expect(res.status).to.equal(200);
        expect(res.body).to.deep.equal({ liked: true, likeCount: 1 });
      }
      expect(await countLikes(db.knex, id)).to.equal(1);
      const detail = await as(other).get(`/api/community/sessions/${id}`);
      expect(detail.body).to.include({ likeCount: 1, isLikedByUser: true });
      expect((await as(creator).get(`/api/community/sessions/${id}`)).body).to.include({ likeCount: 1, isLikedByUser: false });

      for (let i = 0; i < 2; i++) {
        const res = await as(other).unlike(id);
        expect(res.status).to.equal(200);
        expect(res.body).to.deep.equal({ liked: false, likeCount: 0 });
      }
      expect(await countLikes(db.knex, id)).to.equal(0);
      expect((await db.knex('community_snapshots').where({ id }).first('like_count')) as object).to.deep.equal({ like_count: 0 });
    });

    it('50 users liking and unliking one item at once: the count equals the likes table', async () => {
      const id = await readySnapshot(creator, { title: 'Crowd', subreddits: ['pics'], ageHours: 1 });
      const [stay, leave] = [likers.slice(0, 25), likers.slice(25)];
      await likeAll(id, leave);
      // All at once: half like, half unlike, each request sent twice.
      const responses = await Promise.all([...stay, ...stay].map((u) => as(u).like(id)).concat([...leave, ...leave].map((u) => as(u).unlike(id))));
      expect(responses.map((r) => r.status)).to.deep.equal(responses.map(() => 200));

      const rows = (await db.knex('community_likes').where({ snapshot_id: id }).pluck('user_id')) as string[];
      expect(rows.sort()).to.deep.equal(stay.map((u) => u.user.id).sort());
      expect((await db.knex('community_snapshots').where({ id }).first('like_count')) as object).to.deep.equal({ like_count: 25 });
      expect((await as(other).get(`/api/community/sessions/${id}`)).body).to.include({ likeCount: 25, isLikedByUser: false });
      expect((await feed(stay[0]!, 'sort=top')).items[0]).to.include({ id, likeCount: 25, isLikedByUser: true });
      expect((await feed(leave[0]!, 'sort=top')).items[0]).to.include({ id, likeCount: 25, isLikedByUser: false });
    });
  });

  describe('GET /api/community', () => {
    it('items carry categorySlug, likeCount and isLikedByUser (the viewer\'s own like)', async () => {
      const category = categories[1]!;
      const id = await readySnapshot(creator, { title: 'Carrying', subreddits: ['pics'], categoryId: category.id, ageHours: 1 });
      await likeAll(id, [other, likers[0]!]);
      const [mine] = (await feed(other, '')).items;
      expect(mine).to.include({ id, categoryId: category.id, categorySlug: category.slug, likeCount: 2, isLikedByUser: true });
      expect((await feed(creator, '')).items[0]).to.include({ likeCount: 2, isLikedByUser: false });
      expect((await as(other).get(`/api/community/sessions/${id}`)).body).to.include({ categorySlug: category.slug, likeCount: 2, isLikedByUser: true });
    });

    it('sort=top: most likes first, then newest', async () => {
      const none = await readySnapshot(creator, { title: 'None', subreddits: ['pics'], ageHours: 0.5 });
      const twoOld = await readySnapshot(creator, { title: 'Two old', subreddits: ['pics'], ageHours: 50 });
      const twoNew = await readySnapshot(creator, { title: 'Two new', subreddits: ['pics'], ageHours: 5 });
      const three = await readySnapshot(creator, { title: 'Three', subreddits: ['pics'], ageHours: 100 });
      await likeAll(three, likers.slice(0, 3));
      await likeAll(twoOld, likers.slice(0, 2));
      await likeAll(twoNew, likers.slice(2, 4));
      const page = await feed(other, 'sort=top');
      expect(page.items.map((i) => [i.id, i.likeCount])).to.deep.equal([
        [three, 3],
        [twoNew, 2],
        [twoOld, 2],
        [none, 0],
      ]);
      expect(page.total).to.equal(4);
      expect((await feed(other, '')).items.map((i) => i.id), 'sort=new is by age alone').to.deep.equal([none, twoNew, twoOld, three]);
    });

    it('sort=hot: (likes + 1) / (age_hours + 2)^1.5, highest first', async () => {
      // [likes, age in hours]; scores far enough apart that the seconds the test takes cannot swap two.
      const fixture: [number, number][] = [
        [0, 1], // 0.192
        [5, 10], // 0.144
        [2, 2], // 0.375
        [5, 30], // 0.033
        [1, 0], // 0.707
        [0, 4], // 0.068
        [4, 200], // 0.0017
      ];
      const ids: number[] = [];
      for (const [i, [likes, age]] of fixture.entries()) {
        const id = await readySnapshot(creator, { title: `Hot ${i}`, subreddits: ['pics'], ageHours: age });
        await likeAll(id, likers.slice(0, likes));
        ids.push(id);
      }
      const expected = fixture
        .map(([likes, age], i) => ({ id: ids[i]!, score: hot(likes, age) }))
        .sort((a, b) => b.score - a.score)
        .map((x) => x.id);
      const page = await feed(other, 'sort=hot');
      expect(page.items.map((i) => i.id)).to.deep.equal(expected);
      expect(page.items.map((i) => i.id)).to.deep.equal([ids[4], ids[2], ids[0], ids[1], ids[5], ids[3], ids[6]]);
      // Paged, the same order.
      const second = await feed(other, 'sort=hot&pageSize=3&page=2');
      expect(second.items.map((i) => i.id)).to.deep.equal(expected.slice(3, 6));
      expect(second).to.include({ total: 7, page: 2, pageSize: 3, totalPages: 3 });
    });

    it('filters: contentType, categorySlug, creator, subreddit, search; creatorId and categoryId still work', async () => {
      const [c0, c1] = [categories[0]!, categories[1]!];
      const art = await readySnapshot(creator, { title: 'Watercolour harbour', subreddits: ['watercolor', 'art'], categoryId: c1.id, ageHours: 1 });
      const space = await readySnapshot(other, { title: 'Nebulae', subreddits: ['spaceporn'], categoryId: c0.id, ageHours: 2 });
      const ids = async (query: string) => (await feed(other, query)).items.map((i) => i.id);

      expect(await ids('contentType=all')).to.deep.equal([art, space]);
      expect(await ids('contentType=sessions')).to.deep.equal([art, space]);
      expect(await ids(`categorySlug=${c1.slug}`)).to.deep.equal([art]);
      expect(await ids('categorySlug=no-such-category')).to.deep.equal([]);
      expect(await ids(`categoryId=${c0.id}`)).to.deep.equal([space]);
      expect(await ids(`categoryId=${c0.id}&categorySlug=${c1.slug}`), 'both: they must agree').to.deep.equal([]);
      // Creator: a part of the first or the last name, any case.
      expect(await ids('creator=MARGUER')).to.deep.equal([art]);
      expect(await ids('creator=yelar')).to.deep.equal([art]);
      expect(await ids('creator=bo')).to.deep.equal([space]);
      expect(await ids('creator=nobody')).to.deep.equal([]);
      expect(await ids(`creatorId=${other.user.id}`)).to.deep.equal([space]);
      // Subreddit: a substring of any of its names; "r/" and case do not matter.
      expect(await ids('subreddit=color')).to.deep.equal([art]);
      expect(await ids('subreddit=r/ART')).to.deep.equal([art]);
      expect(await ids('subreddit=porn')).to.deep.equal([space]);
      expect(await ids('subreddit=r%20a'), 'no match across two names').to.deep.equal([]);
      expect(await ids('subreddit=100%25')).to.deep.equal([]);
      // Search: titles, and creators' names.
      expect(await ids('search=HARBOUR')).to.deep.equal([art]);
      expect(await ids('search=nebula')).to.deep.equal([space]);
      expect(await ids('search=Oyelaran')).to.deep.equal([art]);
      expect(await ids('search=marguerite%20oyelaran'), 'the full name').to.deep.equal([art]);
      expect(await ids('search=_')).to.deep.equal([]);
      // Unknown parameters are ignored.
      expect(await ids('colour=blue&nsfw=1')).to.deep.equal([art, space]);
    });

    describe('contentType: the reference’s values', () => {
      let art: number;
      let space: number;
      // Every test starts from an empty feed (the afterEach above): two items of two creators.
      beforeEach(async () => {
        art = await readySnapshot(creator, { title: 'Ink harbour', subreddits: ['art'], ageHours: 1 });
        space = await readySnapshot(other, { title: 'Galaxies', subreddits: ['spaceporn'], ageHours: 2 });
      });
      const ids = async (query: string) => (await feed(other, query)).items.map((i) => i.id);

      for (const value of ['all', 'sessions']) {
        it(`${value}: the snapshots`, async () => {
          expect(await ids(`contentType=${value}`)).to.deep.equal([art, space]);
        });
      }
      for (const value of ['captions', 'babecuts', 'hypnococks', 'betacensors']) {
        it(`${value} (media only): an empty page in the usual envelope`, async () => {
          expect(await feed(other, `contentType=${value}`)).to.deep.equal({ items: [], total: 0, page: 1, pageSize: 20, totalPages: 0 });
          expect(await feed(other, `contentType=${value}&sort=hot&page=2&pageSize=5`)).to.deep.equal({ items: [], total: 0, page: 2, pageSize: 5, totalPages: 0 });
        });
      }
      it('any other value (the old invented ones included) is a 400 listing the allowed ones', async () => {
        for (const value of ['images', 'videos', 'gifs', 'media', 'podcasts', 'ALL', '']) {
          const res = await as(other).get(`/api/community?contentType=${value}`);
          if (value === '') {
            expect(res.status, 'empty: the default').to.equal(200);
            continue;
          }
          expect(res.status, value).to.equal(400);
          expect(res.body).to.include({ code: 'VALIDATION_ERROR' });
          expect((res.body as { message: string }).message).to.include('"all", "sessions", "captions", "babecuts", "hypnococks", "betacensors"');
        }
      });
    });

    it('refuses a bad sort, contentType or an over-long categorySlug with 400 naming the field', async () => {
      for (const [query, field] of [
        ['sort=best', 'sort'],
        ['contentType=podcasts', 'contentType'],
        [`categorySlug=${'x'.repeat(121)}`, 'categorySlug'],
      ] as const) {
        const res = await as(other).get(`/api/community?${query}`);
        expect(res.status, query).to.equal(400);
        expect((res.body as { details: { fields: { field: string }[] } }).details.fields.map((f) => f.field)).to.deep.equal([field]);
      }
      expect((await as(other).get(`/api/community?categorySlug=${'x'.repeat(120)}`)).status).to.equal(200);
    });
  });
});
