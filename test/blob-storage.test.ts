import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { BlobServiceClient } from '@azure/storage-blob';
import { expect } from 'chai';
import { azuriteConnectionString, blobStorageAnswers, startAzurite, type AzuriteHandle } from '../scripts/lib/azurite.js';
import { BlobStorageError, BlobStore } from '../workers/storage/blob-storage.js';
import { freePort } from '../scripts/lib/child-process.js';
import { waitFor } from './helpers/wait.js';

const containers = { thumbnails: 'thumbnails', snapshots: 'community' };

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('blob storage (Azurite)', function () {
  // Azurite starts in about a second; a cold start on a busy machine can take longer.
  this.timeout(60_000);
  let azurite: AzuriteHandle;
  let store: BlobStore;

  before(async () => {
    azurite = await startAzurite({ silent: true });
    store = BlobStore.fromConnectionString(azurite.connectionString, containers);
  });
  after(async () => {
    await azurite?.stop();
  });

  it('runs on a free port with the development account', () => {
    expect(azurite.host).to.equal('127.0.0.1');
    expect(azurite.port).to.be.above(0);
    expect(azurite.connectionString).to.include(`BlobEndpoint=http://127.0.0.1:${azurite.port}/devstoreaccount1`);
    expect(azurite.connectionString).to.include('AccountName=devstoreaccount1');
  });

  it('ensureContainers, raced by several callers, leaves exactly the two containers, blob-public; again, it keeps what they hold', async () => {
    // The account as the SDK sees it, not through BlobStore.
    const account = BlobServiceClient.fromConnectionString(azurite.connectionString);
    const containerNames = async (): Promise<string[]> => {
      const names: string[] = [];
      for await (const c of account.listContainers()) names.push(c.name);
      return names.sort();
    };
    expect(await containerNames()).to.deep.equal([]);

    const other = BlobStore.fromConnectionString(azurite.connectionString, containers);
    await Promise.all([store.ensureContainers(), store.ensureContainers(), other.ensureContainers()]);
    expect(await containerNames()).to.deep.equal(['community', 'thumbnails']);
    for (const name of await containerNames()) {
      expect((await account.getContainerClient(name).getAccessPolicy()).blobPublicAccess, name).to.equal('blob');
    }

    const name = 'thumbnails/race/kept.webp';
    await store.upload(containers.thumbnails, name, Buffer.from('kept'), 'image/webp');
    await store.ensureContainers();
    expect(await containerNames()).to.deep.equal(['community', 'thumbnails']);
    expect((await store.download(containers.thumbnails, name)).toString()).to.equal('kept');
    expect(await store.deleteBlob(containers.thumbnails, name)).to.equal('deleted');
  });

  it('uploads, lists, downloads, checks existence and overwrites', async () => {
    const a = Buffer.from('first blob');
    const b = Buffer.alloc(70_000, 3);
    const { url } = await store.upload(containers.snapshots, 'snapshots/7/0-a.jpg', a, 'image/jpeg');
    expect(url).to.equal(store.url(containers.snapshots, 'snapshots/7/0-a.jpg'));
    expect(url).to.equal(`http://127.0.0.1:${azurite.port}/devstoreaccount1/community/snapshots/7/0-a.jpg`);
    await store.upload(containers.snapshots, 'snapshots/7/1-b.webp', b, 'image/webp');
    await store.upload(containers.snapshots, 'snapshots/70/0-c.jpg', a, 'image/jpeg');

    expect(await store.list(containers.snapshots, 'snapshots/7/')).to.deep.equal([
      { name: 'snapshots/7/0-a.jpg', size: a.length, contentType: 'image/jpeg' },
      { name: 'snapshots/7/1-b.webp', size: b.length, contentType: 'image/webp' },
    ]);
    expect((await store.download(containers.snapshots, 'snapshots/7/1-b.webp')).equals(b)).to.equal(true);
    expect(await store.exists(containers.snapshots, 'snapshots/7/0-a.jpg')).to.equal(true);
    expect(await store.exists(containers.snapshots, 'snapshots/7/9-missing.jpg')).to.equal(false);

    const replaced = Buffer.from('second version');
    await store.upload(containers.snapshots, 'snapshots/7/0-a.jpg', replaced, 'image/png');
    expect((await store.download(containers.snapshots, 'snapshots/7/0-a.jpg')).toString()).to.equal('second version');
    expect((await store.list(containers.snapshots, 'snapshots/7/0-')).map((x) => [x.name, x.contentType])).to.deep.equal([['snapshots/7/0-a.jpg', 'image/png']]);
  });

  it('url() serves the bytes to a plain anonymous GET, odd names included', async () => {
    const body = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 1, 2, 3]);
    const name = 'thumbnails/sessions/5/a b+ü.webp';
    const { url } = await store.upload(containers.thumbnails, name, body, 'image/webp');
    const res = await fetch(url);
    expect(res.status).to.equal(200);
    expect(res.headers.get('content-type')).to.equal('image/webp');
    expect(Buffer.from(await res.arrayBuffer()).equals(body)).to.equal(true);
    // Listing is not public: only blobs are.
    expect((await fetch(`${store.url(containers.thumbnails, '').replace(/\/$/, '')}?restype=container&comp=list`)).status).to.not.equal(200);
    expect(store.url(containers.thumbnails, '')).to.equal(`http://127.0.0.1:${azurite.port}/devstoreaccount1/thumbnails/`);
  });

  it('deleteBlob says whether the blob existed; deletePrefix deletes exactly the prefix, idempotently', async () => {
    await store.upload(containers.thumbnails, 'thumbnails/sessions/9/1.webp', Buffer.from('x'), 'image/webp');
    expect(await store.deleteBlob(containers.thumbnails, 'thumbnails/sessions/9/1.webp')).to.equal('deleted');
    expect(await store.deleteBlob(containers.thumbnails, 'thumbnails/sessions/9/1.webp')).to.equal('missing');

    const under = Array.from({ length: 19 }, (_, i) => `snapshots/12/${i}-m.jpg`);
    const beside = ['snapshots/120/0-m.jpg', 'snapshots/1/0-m.jpg', 'snapshots/12-not-a-folder.jpg'];
    await Promise.all([...under, ...beside].map((n) => store.upload(containers.snapshots, n, Buffer.from(n), 'image/jpeg')));
    expect(await store.deletePrefix(containers.snapshots, 'snapshots/12/')).to.equal(under.length);
    expect(await store.list(containers.snapshots, 'snapshots/12/')).to.deep.equal([]);
    for (const n of beside) expect(await store.exists(containers.snapshots, n), n).to.equal(true);
    expect(await store.deletePrefix(containers.snapshots, 'snapshots/12/')).to.equal(0);

    const e = await rejection(store.deletePrefix(containers.snapshots, ''));
    expect(e).to.be.instanceOf(BlobStorageError);
    expect(e.message).to.match(/empty prefix/);
  });

  it('a missing blob fails to download with a clear error', async () => {
    const e = await rejection(store.download(containers.snapshots, 'snapshots/404/none.jpg'));
    expect(e).to.be.instanceOf(BlobStorageError);
    expect(e).to.include({ statusCode: 404, code: 'BlobNotFound' });
    expect(e.message).to.match(/^blob storage: download community\/snapshots\/404\/none\.jpg failed: 404 BlobNotFound/);
  });

  it('ping succeeds, and blobStorageAnswers sees it', async () => {
    await store.ping();
    expect(await blobStorageAnswers(azurite.connectionString)).to.equal(true);
    const nothing = await freePort();
    expect(await blobStorageAnswers(azurite.connectionString.replace(String(azurite.port), String(nothing)), 500)).to.equal(false);
  });

  describe('when storage goes away', () => {
    let outage: AzuriteHandle;
    let location: string;

    before(async () => {
      location = mkdtempSync(path.join(os.tmpdir(), 'showrunner-azurite-'));
      outage = await startAzurite({ silent: true, location });
    });
    after(async () => {
      await outage?.stop();
      rmSync(location, { recursive: true, force: true });
    });

    it('ping and upload fail with a clear error after stop(); restart() brings the data back', async () => {
      const blobs = BlobStore.fromConnectionString(outage.connectionString, containers, { retryDelayMs: 100, maxRetryDelayMs: 200 });
      await blobs.ensureContainers();
      await blobs.upload(containers.snapshots, 'snapshots/1/0-kept.jpg', Buffer.from('kept'), 'image/jpeg');
      await outage.stop();

      const ping = await rejection(blobs.ping());
      expect(ping).to.be.instanceOf(BlobStorageError);
      expect(ping.message).to.match(/^blob storage: ping failed: .*ECONNREFUSED/);

      const upload = await rejection(blobs.upload(containers.snapshots, 'snapshots/1/1-lost.jpg', Buffer.from('x'), 'image/jpeg'));
      expect(upload).to.be.instanceOf(BlobStorageError);
      expect(upload.message).to.match(/^blob storage: upload community\/snapshots\/1\/1-lost\.jpg failed: .*ECONNREFUSED/);

      await outage.restart();
      await blobs.ping();
      expect((await blobs.download(containers.snapshots, 'snapshots/1/0-kept.jpg')).toString()).to.equal('kept');
      expect(await blobs.exists(containers.snapshots, 'snapshots/1/1-lost.jpg')).to.equal(false);
    });

    it('a storage call is tried maxTries times and then gives up with the error; ping tries once', async () => {
      // In place of storage, a listener that drops every connection it takes: each try is one connection.
      let tries = 0;
      const dropper = net.createServer((socket) => {
        tries += 1;
        socket.destroy();
      });
      await new Promise<void>((resolve) => dropper.listen(0, '127.0.0.1', resolve));
      try {
        const { port } = dropper.address() as net.AddressInfo;
        const blobs = BlobStore.fromConnectionString(azuriteConnectionString('127.0.0.1', port), containers, { maxTries: 3, retryDelayMs: 10, maxRetryDelayMs: 20 });
        const upload = await rejection(blobs.upload(containers.snapshots, 'snapshots/1/2-dropped.jpg', Buffer.from('x'), 'image/jpeg'));
        expect(upload).to.be.instanceOf(BlobStorageError);
        expect(upload.message).to.match(/^blob storage: upload community\/snapshots\/1\/2-dropped\.jpg failed: .*(socket hang up|ECONNRESET)/);
        expect(tries, 'upload tries').to.equal(3);

        expect(await rejection(blobs.ping())).to.be.instanceOf(BlobStorageError);
        expect(tries, 'upload tries + one ping').to.equal(4);
      } finally {
        await new Promise((resolve) => dropper.close(resolve));
      }
    });

    it('kill() is abrupt; restart() comes back on the same port', async () => {
      const blobs = BlobStore.fromConnectionString(outage.connectionString, containers, { maxTries: 1 });
      await outage.kill();
      expect(await rejection(blobs.ping())).to.be.instanceOf(BlobStorageError);
      await outage.restart();
      await blobs.ping();
      expect(await blobs.exists(containers.snapshots, 'snapshots/1/0-kept.jpg')).to.equal(true);
    });
  });

  it('startAzurite rejects with its output when the port is taken', async () => {
    const e = await rejection(startAzurite({ port: azurite.port, silent: true }));
    expect(e.message).to.match(/Azurite exited .* before listening on 127\.0\.0\.1:\d+:/);
    expect(e.message).to.match(/EADDRINUSE/);
  });
});

describe('startAzurite child process', function () {
  this.timeout(60_000);

  it('does not outlive a parent killed with SIGKILL', async () => {
    const parent = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL('./fixtures/azurite-parent.ts', import.meta.url))], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const gone = new Promise((resolve) => parent.once('exit', resolve));
    let out = '';
    const connectionString = await waitFor('the parent to report its Azurite', () => {
      out += String(parent.stdout!.read() ?? '');
      const line = out.split('\n').find((l) => l.startsWith('{'));
      return line ? (JSON.parse(line) as { connectionString: string }).connectionString : undefined;
    }, { timeoutMs: 30_000 });
    expect(await blobStorageAnswers(connectionString)).to.equal(true);
    parent.kill('SIGKILL');
    await gone;
    await waitFor('the orphaned Azurite to exit', async () => !(await blobStorageAnswers(connectionString, 500)), { timeoutMs: 10_000 });
  });
});
