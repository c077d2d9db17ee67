import { createHash, randomBytes } from 'node:crypto';
import { BlobServiceClient } from '@azure/storage-blob';
import { expect } from 'chai';
import { createTestApp, registerUser, type TestApp, type TestUser } from '../helpers/app.js';
import { makeImage } from '../helpers/fixture-images.js';
import { createSession } from '../helpers/flows.js';
import { startJobStack, type JobStack } from '../helpers/job-stack.js';
import { testKnex } from '../helpers/database.js';
import { createSnapshot } from '../../workers/processors/snapshots.js';

/**
 * Issue 22 §3: a custom thumbnail URL that starts with our thumbnails container's address and
 * continues with `..%2f` or `%2e%2e/` (or any other spelling) must not make the snapshot job read
 * another blob of the storage account with the account key and publish it. The API refuses such a
 * URL (400), and the job does not read one stored before the rule.
 */

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** A container's URL with a trailing slash, as the storage SDK spells it (what `BlobStore.url(container, '')` gives). */
const containerUrl = (connectionString: string, container: string): string =>
  `${BlobServiceClient.fromConnectionString(connectionString).getContainerClient(container).url.replace(/\/+$/, '')}/`;

/** Spellings that, read by a path-decoding reader, leave the generated-thumbnail names: `base` is the thumbnails container's URL. */
function hostileSpellings(base: string, account: string, secret: { container: string; name: string }): string[] {
  const target = `${secret.container}/${secret.name}`;
  return [
    `${base}..%2f${target}`,
    `${base}%2e%2e/${target}`,
    `${base}%2E%2E%2F${target}`,
    `${base}.%2e/${target}`,
    `${base}..%5c${target}`,
    `${base}..\\${target}`,
    `${base}%252e%252e%252f${target}`,
    `${base}thumbnails/sessions/1/..%2f..%2f..%2f..%2f${target}`,
    `${base}thumbnails/sessions/1/1.webp/..%2f..%2f..%2f..%2f..%2f${target}`,
    `${base}thumbnails%2fsessions%2f1%2f1.webp`,
    `${base}thumbnails/sessions/1/1.webp?x=1`,
    `${base}thumbnails/sessions/01/1.webp`,
    `${base}Thumbnails/sessions/1/1.webp`,
    // Another blob of the thumbnails container, and another container of the account, plainly.
    `${base}secret.webp`,
    `${account}${target}`,
    `${account}./${target}`,
  ];
}

describe('security: a thumbnail URL on our storage names only a blob our jobs write', function () {
  this.timeout(60_000);

  describe('the API refuses every other spelling (PATCH and create)', () => {
    let t: TestApp;
    let user: TestUser;
    let base: string;
    let account: string;

    before(async () => {
      t = createTestApp({ knex: testKnex() });
      user = await registerUser(t);
      base = containerUrl(t.config.azureStorageConnectionString, t.config.blobContainers.thumbnails);
      account = base.slice(0, base.length - `${t.config.blobContainers.thumbnails}/`.length);
    });

    it('answers 400 on `thumbnail` for each spelling, changing nothing', async () => {
      const created = await createSession(t, user, { title: 'Thumb', subreddits: 'pics', thumbnail: 'https://cdn.example.test/a.png' });
      const spellings = hostileSpellings(base, account, { container: 'private-secrets', name: 'secret.png' });
      for (const thumbnail of spellings) {
        const patched = await t.http().patch(`/api/sessions/${created.id}`).set('Cookie', user.cookie).send({ thumbnail });
        expect(patched.status, `PATCH ${thumbnail}: ${patched.text}`).to.equal(400);
        expect(patched.body.details.fields[0].field, thumbnail).to.equal('thumbnail');
        const posted = await t.http().post('/api/sessions').set('Cookie', user.cookie).send({ title: 'New', subreddits: 'pics', thumbnail });
        expect(posted.status, `POST ${thumbnail}: ${posted.text}`).to.equal(400);
      }
      const row = await t.knex('sessions').where({ id: created.id }).first('thumbnail');
      expect(row.thumbnail).to.equal('https://cdn.example.test/a.png');
    });

    it('accepts the exact URL of a generated thumbnail, of a durable media blob, and any external URL', async () => {
      const created = await createSession(t, user, { title: 'Thumb ok', subreddits: 'pics' });
      const hash = sha256(Buffer.from('x'));
      const snapshots = containerUrl(t.config.azureStorageConnectionString, t.config.blobContainers.snapshots);
      for (const thumbnail of [
        `${base}thumbnails/sessions/${created.id}/3.webp`,
        `${snapshots}media/sha256/${hash.slice(0, 2)}/${hash}.jpg`,
        'https://cdn.example.test/thumbnails/..%2fx.png',
      ]) {
        const res = await t.http().patch(`/api/sessions/${created.id}`).set('Cookie', user.cookie).send({ thumbnail });
        expect(res.status, `${thumbnail}: ${res.text}`).to.equal(200);
        expect(res.body.thumbnail).to.equal(thumbnail);
      }
    });
  });

  describe('the snapshot job reads no other blob, even from a row stored before the rule', () => {
    let stack: JobStack;
    let user: TestUser;
    let secret: Buffer;
    const secretContainer = `secret-${randomBytes(4).toString('hex')}`;

    before(async () => {
      stack = await startJobStack();
      user = await registerUser(stack.t);
      secret = await makeImage({ width: 64, height: 64, format: 'png' });
      // A private container (no public access): only the account key reads it.
      const service = BlobServiceClient.fromConnectionString(stack.config.azureStorageConnectionString);
      await service.getContainerClient(secretContainer).createIfNotExists();
      await service.getContainerClient(secretContainer).getBlockBlobClient('secret.png').uploadData(secret, { blobHTTPHeaders: { blobContentType: 'image/png' } });
      // A blob of the thumbnails container that no thumbnail job wrote.
      await stack.blobs.upload(stack.config.blobContainers.thumbnails, 'secret.webp', secret, 'image/png');
      stack.fixture.setListing(['thumbsec'], []);
    });
    after(async () => {
      await BlobServiceClient.fromConnectionString(stack.config.azureStorageConnectionString).getContainerClient(secretContainer).deleteIfExists();
      await stack?.close();
    });

    /** A shared session whose snapshot's source thumbnail is `url` (written straight to the rows, as before the rule), copied by the job. */
    async function copiedThumbnail(url: string): Promise<{ thumbnail_url: string | null; thumbnail_sha256: string | null; status: string }> {
      const created = await createSession(stack.t, user, { title: 'Legacy', subreddits: 'thumbsec', thumbnail: 'https://cdn.example.test/a.png', shareToCommunity: true });
      await stack.knex('sessions').where({ id: created.id }).update({ thumbnail: url });
      const snapshot = (await stack.knex('community_snapshots').where({ session_id: created.id }).first('id')) as { id: number };
      await stack.knex('community_snapshots').where({ id: snapshot.id }).update({ source_thumbnail: url });
      await createSnapshot(stack.deps, { data: { snapshotId: snapshot.id, sessionId: created.id } });
      return stack.knex('community_snapshots').where({ id: snapshot.id }).first('thumbnail_url', 'thumbnail_sha256', 'status');
    }

    it('copies a generated thumbnail (so the check below can see a copy)', async () => {
      const webp = await makeImage({ width: 64, height: 36, format: 'webp' });
      const { url } = await stack.blobs.upload(stack.config.blobContainers.thumbnails, 'thumbnails/sessions/999999/1.webp', webp, 'image/webp');
      const copied = await copiedThumbnail(url);
      expect(copied.status).to.equal('ready');
      expect(copied.thumbnail_sha256).to.equal(sha256(webp));
    });

    it('copies nothing for each hostile spelling: the secret blob is never published', async () => {
      const base = stack.blobs.url(stack.config.blobContainers.thumbnails, '');
      const account = base.slice(0, base.length - `${stack.config.blobContainers.thumbnails}/`.length);
      for (const url of hostileSpellings(base, account, { container: secretContainer, name: 'secret.png' })) {
        const copied = await copiedThumbnail(url);
        expect(copied.status, url).to.equal('ready');
        expect(copied.thumbnail_sha256, url).to.not.equal(sha256(secret));
        expect(copied.thumbnail_url, url).to.equal(null);
      }
    });
  });
});
